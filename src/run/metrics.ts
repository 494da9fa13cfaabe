// /metrics in the Prometheus text exposition format (version 0.0.4): one HELP and TYPE line per
// family, then its samples; label values escaped (\\, \", \n).
import { UNIT_STATES, type UnitStatus } from './types.ts';
import type { RefreshStatus } from '../refresh/refresher.ts';

interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: { labels: Record<string, string>; value: number }[];
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function format(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (f.samples.length === 0) continue;
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      out.push(`${f.name}${labels ? `{${labels}}` : ''} ${Number.isFinite(s.value) ? s.value : 'NaN'}`);
    }
  }
  return `${out.join('\n')}\n`;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export function metricsText(units: readonly UnitStatus[], startedAtMs: number, refresh?: RefreshStatus, nowMs = Date.now()): string {
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
  if (refresh) families.push(...refreshFamilies(refresh, nowMs));
  return format(families);
}

const RESULTS = ['rotated', 'unchanged', 'failed'] as const;

/** Rotation (src/refresh/): how old each secret is, how the last refresh went, when the next is. */
function refreshFamilies(r: RefreshStatus, nowMs: number): Family[] {
  const one = (value: number | undefined) => (value === undefined ? [] : [{ labels: {}, value }]);
  return [
    {
      name: 'tee_init_secret_age_seconds',
      help: 'Seconds since the secret\'s value was last read from its source and found current (boot or refresh).',
      type: 'gauge',
      samples: r.secrets.map((s) => ({ labels: { secret: s.name }, value: (nowMs - s.confirmedAt) / 1000 })),
    },
    {
      name: 'tee_init_secret_installed_timestamp_seconds',
      help: 'When the value in use was installed (boot or the rotation that brought it), in seconds since the Unix epoch.',
      type: 'gauge',
      samples: r.secrets.map((s) => ({ labels: { secret: s.name }, value: s.installedAt / 1000 })),
    },
    {
      name: 'tee_init_secret_certificate_expiry_timestamp_seconds',
      help: 'When the first certificate in the secret in use expires, in seconds since the Unix epoch.',
      type: 'gauge',
      samples: r.secrets.flatMap((s) => (s.expiresAt === undefined ? [] : [{ labels: { secret: s.name }, value: s.expiresAt / 1000 }])),
    },
    { name: 'tee_init_refresh_interval_seconds', help: 'refresh.every.', type: 'gauge', samples: one(r.everyMs / 1000) },
    { name: 'tee_init_refresh_last_timestamp_seconds', help: 'When the last refresh started.', type: 'gauge', samples: one(r.lastAt === undefined ? undefined : r.lastAt / 1000) },
    { name: 'tee_init_refresh_next_timestamp_seconds', help: 'When the next refresh is due.', type: 'gauge', samples: one(r.nextAt === undefined ? undefined : r.nextAt / 1000) },
    {
      name: 'tee_init_refresh_last_result',
      help: 'The last refresh\'s result: 1 for the current one.',
      type: 'gauge',
      samples: r.lastResult === undefined ? [] : RESULTS.map((result) => ({ labels: { result }, value: Number(r.lastResult === result) })),
    },
    { name: 'tee_init_refresh_total', help: 'Refreshes by result.', type: 'counter', samples: RESULTS.map((result) => ({ labels: { result }, value: r.counts[result] })) },
    { name: 'tee_init_refresh_failures_in_a_row', help: 'Refreshes failed since the last good one.', type: 'gauge', samples: one(r.failuresInARow) },
    { name: 'tee_init_reload_failures_total', help: 'Unit reloads that failed after a rotation.', type: 'counter', samples: one(r.reloadFailures) },
  ];
}
