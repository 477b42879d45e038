/**
 * A strict reader of the Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format): it throws on
 * any line a Prometheus server would reject, and on the family-level rules (one TYPE per family,
 * before its samples; families not interleaved; no duplicate series; histogram buckets cumulative
 * and ending at +Inf = _count).
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly families: ReadonlyMap<string, { type: MetricType; help?: string }>;
  readonly samples: readonly Sample[];
  /** The value of the one series with exactly these labels, or undefined. */
  get(name: string, labels?: Record<string, string>): number | undefined;
  /** The sum over every series of `name` whose labels include `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, readonly string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count'] };

/** As Prometheus reads a value (Go's strconv.ParseFloat): NaN and Inf in any case, e.g. prom-client's "Nan". */
function parseValue(raw: string, line: string): number {
  if (/^[+]?inf(inity)?$/i.test(raw)) return Infinity;
  if (/^-inf(inity)?$/i.test(raw)) return -Infinity;
  if (/^nan$/i.test(raw)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`not a number "${raw}" in: ${line}`);
  return Number(raw);
}

/** Parses `{a="x",b="y"}` starting at `i` (the brace); returns the labels and the index after it. */
function parseLabels(text: string, i: number, line: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++;
  for (;;) {
    if (text[i] === '}') return [labels, i + 1];
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`label without "=" in: ${line}`);
    const name = text.slice(i, eq).trim();
    if (!LABEL.test(name)) throw new Error(`bad label name "${name}" in: ${line}`);
    if (name in labels) throw new Error(`label ${name} twice in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] !== '\\') {
        value += text[j];
        continue;
      }
      const next = text[++j];
      if (next === 'n') value += '\n';
      else if (next === '\\' || next === '"') value += next;
      else throw new Error(`bad escape \\${next} in: ${line}`);
    }
    if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`expected "," or "}" in: ${line}`);
  }
}

function familyOf(name: string, families: Map<string, { type: MetricType }>): string | undefined {
  if (families.has(name)) return name;
  for (const [family, { type }] of families) {
    if ((SUFFIXES[type] ?? []).some((s) => name === family + s)) return family;
  }
  return undefined;
}

const key = (name: string, labels: Record<string, string>) => `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)))}`;

export function parsePrometheusText(body: string): Exposition {
  if (!body.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, { type: MetricType; help?: string }>();
  const samples: Sample[] = [];
  const seenSamplesOf = new Set<string>();
  const series = new Set<string>();
  const typed = new Set<string>();
  let current: string | undefined;
  for (const line of body.slice(0, -1).split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kind, name, rest = ''] = m;
      if (!NAME.test(name!)) throw new Error(`bad metric name in: ${line}`);
      if (seenSamplesOf.has(name!)) throw new Error(`${kind} after the samples of ${name}`);
      const family = families.get(name!) ?? { type: 'untyped' as MetricType };
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`unknown type in: ${line}`);
        if (typed.has(name!)) throw new Error(`TYPE twice for ${name}`);
        typed.add(name!);
        family.type = rest as MetricType;
      } else {
        if (family.help !== undefined) throw new Error(`HELP twice for ${name}`);
        family.help = rest;
      }
      families.set(name!, family);
      continue;
    }
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`not a sample: ${line}`);
    const name = line.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
    let labels: Record<string, string> = {};
    let i = nameEnd;
    if (line[i] === '{') [labels, i] = parseLabels(line, i, line);
    const parts = line.slice(i).trim().split(/ +/);
    if (line[i] !== ' ' || parts.length < 1 || parts.length > 2) throw new Error(`expected " value [timestamp]" in: ${line}`);
    const value = parseValue(parts[0]!, line);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`bad timestamp in: ${line}`);
    const family = familyOf(name, families) ?? name;
    if (family !== current) {
      if (seenSamplesOf.has(family)) throw new Error(`samples of ${family} are not together`);
      seenSamplesOf.add(family);
      current = family;
    }
    const k = key(name, labels);
    if (series.has(k)) throw new Error(`duplicate series: ${line}`);
    series.add(k);
    samples.push({ name, labels, value });
  }
  checkHistograms(families, samples);
  const matches = (s: Sample, name: string, labels: Record<string, string>) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  return {
    families,
    samples,
    get: (name, labels = {}) => samples.find((s) => matches(s, name, labels) && Object.keys(s.labels).length === Object.keys(labels).length)?.value,
    sum: (name, labels = {}) => samples.filter((s) => matches(s, name, labels)).reduce((a, s) => a + s.value, 0),
  };
}

function checkHistograms(families: Map<string, { type: MetricType }>, samples: Sample[]): void {
  for (const [family, { type }] of families) {
    if (type !== 'histogram') continue;
    const groups = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>();
    for (const s of samples) {
      if (!s.name.startsWith(family)) continue;
      const { le, ...rest } = s.labels;
      const g = groups.get(key('', rest)) ?? { buckets: [] };
      groups.set(key('', rest), g);
      if (s.name === `${family}_bucket`) {
        if (le === undefined) throw new Error(`${family}_bucket without le`);
        g.buckets.push([parseValue(le, s.name), s.value]);
      } else if (s.name === `${family}_count`) g.count = s.value;
      else if (s.name === `${family}_sum`) g.sum = s.value;
    }
    for (const [labels, g] of groups) {
      const at = `${family}${labels}`;
      if (g.count === undefined || g.sum === undefined) throw new Error(`${at} lacks _count or _sum`);
      for (let i = 1; i < g.buckets.length; i++) {
        if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) throw new Error(`${at}: le not increasing`);
        if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${at}: buckets not cumulative`);
      }
      const last = g.buckets[g.buckets.length - 1];
      if (!last || last[0] !== Infinity || last[1] !== g.count) throw new Error(`${at}: no +Inf bucket equal to _count`);
    }
  }
}
