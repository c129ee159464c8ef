/**
 * The memory layouts the WebAssembly kernel and its TypeScript driver share: the job
 * descriptor (int32 slots, then float64 coefficients from byte COEFFICIENT_BASE) and the
 * nearest-code table of the 8-bit codec. Emitted into both languages by scripts/generate.ts,
 * so neither side keeps a copy.
 */
export const DESCRIPTOR_SLOTS = {
  /** 1 update, 2 trust-ratio norms */
  op: 0,
  /** rule id: index in RULE_SPECS */
  rule: 1,
  n: 2,
  block: 3,
  /** state codec: 4 (block-wise 4-bit), 8 (block-wise 8-bit) or 32 (float32) */
  bits: 4,
  param: 5,
  grad: 6,
  /** 3 slots: codes (8- or 4-bit) or float32 values per state */
  data: 7,
  /** 3 slots */
  absmax: 10,
  /** 3 slots: the codec's lookup table per state (8- and 4-bit) */
  table: 13,
  /** per-thread scratch base */
  scratch: 16,
  chunks: 17,
  /** float64 pairs per block (trust-ratio norms) */
  norms: 18,
  nstates: 19,
  /** 1: float32 parameter maths, 0: exact */
  float32: 20,
} as const;

/** Byte offset of the float64 coefficient slots, and the descriptor's size. */
export const COEFFICIENT_BASE = 256;
export const DESCRIPTOR_BYTES = 512;
export const MAX_COEFFICIENT_SLOTS = (DESCRIPTOR_BYTES - COEFFICIENT_BASE) / 8;

/** Most states a rule may have (the kernel's descriptor has three slots per state field). */
export const MAX_STATES = 3;

/**
 * The 8-bit codec's nearest-code table (bytes): the map, the code of 0, then per cell of r's
 * high 16 bits (sign, exponent, 7 mantissa bits, magnitudes 0..1) the code at the cell's low
 * end and its step threshold, twice: compact (positive cells then negative cells) and flat
 * (indexed by r's bits >>> 16, 65536 entries).
 */
export const QUANT_TABLE = {
  cellLow: 0,
  cellHigh: 0x3f80,
  map: 0,
  zeroCode: 1024,
  cells: 1040,
} as const;
export const QUANT_TABLE_CELLS = QUANT_TABLE.cellHigh - QUANT_TABLE.cellLow + 1;
export const QUANT_TABLE_FLAT = QUANT_TABLE.cells + 8 * QUANT_TABLE_CELLS;
export const QUANT_TABLE_BYTES = QUANT_TABLE_FLAT + 4 * 65536;

/**
 * The 4-bit codec's table (bytes): the 16-value map; 15 float32 thresholds (threshold k is the
 * largest r whose nearest code is <= k, so the code of r is the number of thresholds below r);
 * the map as four 16-byte planes (byte j of value c at planes + 16·j + c, for a swizzle decode);
 * the code of 0, the number of negative map values and 1 for the sign nudge (signed states);
 * `hasFlat` = 1 when `flat` holds the update encoder's cell table: one entry per 16 high bits
 * of r, as QUANT_TABLE_FLAT (nudged code at the cell's low-magnitude end, bits 16..23; low 16
 * bits of the largest magnitude with that code), so encoding is one lookup instead of 15
 * compares.
 */
export const QUANT4_TABLE = {
  map: 0,
  thresholds: 64,
  planes: 128,
  zeroCode: 192,
  negatives: 196,
  signNudge: 200,
  hasFlat: 204,
  flat: 256,
  bytes: 256 + 4 * 65536,
} as const;
