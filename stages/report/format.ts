// Number formatting shared by the run report and the sweep report. Fixed rules, no locale: the same
// numbers give the same bytes on every machine.

export const DASH = '—';

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** 0.73034 -> `73.03%`. */
export const pct = (v: unknown, digits = 2) => (isNum(v) ? `${(v * 100).toFixed(digits)}%` : DASH);

/** A difference of two fractions in percentage points, signed: -0.0044 -> `−0.44 pp`. */
export const pp = (v: unknown, digits = 2) =>
  isNum(v) ? `${v < 0 ? '−' : v > 0 ? '+' : ''}${Math.abs(v * 100).toFixed(digits)} pp` : DASH;

export const fixed = (v: unknown, digits = 3) => (isNum(v) ? v.toFixed(digits) : DASH);

/** 4800 -> `4,800`; fractions keep `digits` decimals. */
export function grouped(v: unknown, digits = 0): string {
  if (!isNum(v)) return DASH;
  const [int, frac] = Math.abs(v).toFixed(digits).split('.');
  const withCommas = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${v < 0 ? '-' : ''}${withCommas}${frac ? `.${frac}` : ''}`;
}

/** 21.34 -> `21.3 s`, 125 -> `2 min 5 s`. */
export function duration(v: unknown): string {
  if (!isNum(v)) return DASH;
  if (v < 60) return `${v.toFixed(v < 10 ? 2 : 1)} s`;
  const m = Math.floor(v / 60);
  return `${m} min ${Math.round(v - m * 60)} s`;
}

/** The first 12 hex digits of a content hash: enough to tell runs apart in a table. */
export const shortHash = (h: unknown) => (typeof h === 'string' && h.length > 0 ? h.slice(0, 12) : DASH);

/** A config value in one line: strings bare, everything else as JSON. */
export const plain = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? DASH : JSON.stringify(v));

/** A metric by its name: accuracies as percentages, everything else with 4 significant digits. */
export function metricValue(name: string, v: unknown): string {
  if (!isNum(v)) return DASH;
  return /acc/i.test(name) ? pct(v) : Number(v.toPrecision(4)).toString();
}
