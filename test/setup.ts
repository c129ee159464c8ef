/**
 * Loaded before every test file (`--import`, see package.json). Under CI the property tests use
 * one fixed fast-check seed, so a CI verdict is reproducible; elsewhere every run draws new
 * cases. Either way the seed is printed, and FC_SEED=<n> replays a run.
 */
import fc from 'fast-check';

const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : process.env.CI ? 20261124 : Date.now() % 2 ** 31;
fc.configureGlobal({ seed });
console.log(`# fast-check seed ${seed} (FC_SEED=${seed} replays it)`);
