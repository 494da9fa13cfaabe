// Start order of the units: a topological order of their `after:` lists. An unknown name or a
// cycle is a config error (exit 78) naming the field, in `tee-init check` as in a boot.
import { configError } from '../lib/errors.ts';

export interface OrderNode {
  name: string;
  after: readonly string[];
  /** The config field that holds this unit's `after:` list, for messages. */
  field: string;
}

/**
 * Units in an order where each comes after everything it is after; among units free to go,
 * the config's order is kept (so the plan reads like the file). Stop order is the reverse.
 */
export function startOrder(nodes: readonly OrderNode[]): string[] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  for (const n of nodes) {
    n.after.forEach((dep, i) => {
      if (dep === n.name) throw configError(`${n.field}[${i}]: ${n.name} cannot be after itself`);
      if (!byName.has(dep)) throw configError(`${n.field}[${i}]: no unit named ${JSON.stringify(dep)} (units: ${[...byName.keys()].join(', ')})`);
    });
  }
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (n: OrderNode, path: string[]): void => {
    const s = state.get(n.name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(n.name)), n.name];
      throw configError(`${byName.get(cycle[0]!)!.field}: a cycle in after: ${cycle.join(' -> ')} (each waits for the next to be ready)`);
    }
    state.set(n.name, 'visiting');
    for (const dep of n.after) visit(byName.get(dep)!, [...path, n.name]);
    state.set(n.name, 'done');
    order.push(n.name);
  };
  for (const n of nodes) visit(n, []);
  return order;
}
