/**
 * The capacity task as the CLI runs it: the search, the table on the terminal, the results
 * JSON and the HTML report (with whatever demo and ablation results the directory holds).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeReport } from '../run-demo.js';
import { capacityTable, runCapacity, type CapacityOptions, type CapacityResults } from './run-capacity.js';

export async function capacityCommand(o: CapacityOptions & { out: string }): Promise<{ results: CapacityResults; report: string }> {
  const results = await runCapacity(o);
  o.log(capacityTable(results));
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'capacity-results.json'), JSON.stringify(results));
  const report = writeReport(o.out, {});
  o.log(`\nReport: ${report}`);
  return { results, report };
}
