// /metrics in the Prometheus text exposition format (version 0.0.4): one HELP and TYPE line per
// family, then its samples; label values escaped (\\, \", \n).
import { UNIT_STATES, type UnitStatus } from './types.ts';

interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: { labels: Record<string, string>; value: number }[];
}

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function format(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (f.samples.length === 0) continue;
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escape(v)}"`).join(',');
      out.push(`${f.name}${labels ? `{${labels}}` : ''} ${Number.isFinite(s.value) ? s.value : 'NaN'}`);
    }
  }
  return `${out.join('\n')}\n`;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export function metricsText(units: readonly UnitStatus[], startedAtMs: number): string {
  const per = (name: string, help: string, type: Family['type'], value: (u: UnitStatus) => number | undefined): Family => ({
    name,
    help,
    type,
    samples: units.flatMap((u) => {
      const v = value(u);
      return v === undefined ? [] : [{ labels: { unit: u.name, kind: u.kind }, value: v }];
    }),
  });
  const families: Family[] = [
    { name: 'tee_init_start_time_seconds', help: 'When the init started, in seconds since the Unix epoch.', type: 'gauge', samples: [{ labels: {}, value: startedAtMs / 1000 }] },
    per('tee_init_unit_ready', 'Whether the unit is ready (a oneshot: finished with status 0).', 'gauge', (u) => Number(u.ready)),
    {
      name: 'tee_init_unit_state',
      help: 'The unit\'s state: 1 for the current one.',
      type: 'gauge',
      samples: units.flatMap((u) => UNIT_STATES.map((state) => ({ labels: { unit: u.name, state }, value: Number(u.state === state) }))),
    },
    per('tee_init_unit_restarts_total', 'Restarts of the process so far.', 'counter', (u) => (u.kind === 'listener' ? undefined : u.restarts)),
    per('tee_init_unit_exit_status', 'The last exit status of the process (128+N for signal N).', 'gauge', (u) => u.exitStatus),
  ];
  // Listener counters: one family per stat name, a sample per listener that reports it.
  const statNames = [...new Set(units.flatMap((u) => Object.keys(u.stats ?? {})))].sort();
  for (const stat of statNames) {
    const name = `tee_init_listener_${stat}`;
    if (!METRIC_NAME.test(name)) continue;
    families.push({
      name,
      help: `Listener ${stat.replace(/_/g, ' ')}.`,
      type: stat.endsWith('_total') ? 'counter' : 'gauge',
      samples: units.flatMap((u) => (u.stats?.[stat] === undefined ? [] : [{ labels: { unit: u.name }, value: u.stats[stat] }])),
    });
  }
  return format(families);
}
