import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Line {
  readonly label: string;
  readonly colour: string;
  /** One value per x; null where there is nothing to plot (no sync in that bucket). */
  readonly values: ReadonlyArray<number | null>;
  readonly dash?: number[];
}

const fmt = (v: number | null, digits: number) => (v === null ? '–' : Number.isInteger(v) ? String(v) : v.toFixed(digits));
const clock = (ms: number) => new Date(ms).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: ms % 60_000 ? '2-digit' : undefined });

/**
 * A time chart (uPlot, on a canvas) and, for keyboards, screen readers and tests, the same
 * points as a table. The figure also carries them as JSON in `data-series`.
 */
export function TimeChart(props: { id: string; title: string; unit: string; x: readonly number[]; lines: readonly Line[]; digits?: number }) {
  const host = useRef<HTMLDivElement>(null);
  const digits = props.digits ?? 1;
  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const data: uPlot.AlignedData = [props.x.map((ms) => ms / 1000), ...props.lines.map((l) => l.values.map((v) => v))];
    const plot = new uPlot(
      {
        width: Math.max(280, el.clientWidth),
        height: 220,
        legend: { show: true, live: false },
        cursor: { drag: { x: false, y: false } },
        scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        axes: [{ stroke: '#1a1a1a', grid: { stroke: '#e3e3e3' } }, { stroke: '#1a1a1a', grid: { stroke: '#e3e3e3' }, label: props.unit, size: 60 }],
        series: [{}, ...props.lines.map((l) => ({ label: l.label, stroke: l.colour, width: 2, spanGaps: false, points: { show: true, size: 4 }, ...(l.dash ? { dash: l.dash } : {}) }))],
      },
      data,
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.clientWidth), height: 220 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [props.x, props.lines, props.unit]);

  const plotted = JSON.stringify({ x: props.x, series: Object.fromEntries(props.lines.map((l) => [l.label, l.values])) });
  return (
    <figure class="chart" id={props.id} data-series={plotted} aria-labelledby={`${props.id}-title`}>
      <figcaption id={`${props.id}-title`}>{props.title}</figcaption>
      <div class="plot" ref={host} aria-hidden="true" />
      <details>
        <summary>Data of “{props.title}”</summary>
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Bucket start</th>
                {props.lines.map((l) => (
                  <th scope="col" key={l.label}>
                    {l.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {props.x.map((ms, i) => (
                <tr key={ms} data-start={ms}>
                  <th scope="row">{clock(ms)}</th>
                  {props.lines.map((l) => (
                    <td key={l.label}>{fmt(l.values[i] ?? null, digits)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}

export interface BarRow {
  readonly key: string;
  /** The category's names (the first heads the row). */
  readonly cells: readonly string[];
  /** One count per value column. */
  readonly values: readonly number[];
}

/** Counts by category: a table whose count cells hold the number and a bar scaled to the largest count. */
export function BarTable(props: { id: string; title: string; columns: readonly string[]; valueColumns: readonly string[]; rows: readonly BarRow[]; empty: string }) {
  const max = Math.max(1, ...props.rows.flatMap((r) => r.values));
  return (
    <figure class="bars" id={props.id} aria-labelledby={`${props.id}-title`} data-series={JSON.stringify(props.rows.map((r) => [...r.cells, ...r.values]))}>
      <figcaption id={`${props.id}-title`}>{props.title}</figcaption>
      {props.rows.length === 0 ? (
        <p class="empty">{props.empty}</p>
      ) : (
        <table>
          <thead>
            <tr>
              {[...props.columns, ...props.valueColumns].map((c) => (
                <th scope="col" key={c}>
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {props.rows.map((r) => (
              <tr key={r.key}>
                {r.cells.map((c, i) =>
                  i === 0 ? (
                    <th scope="row" key={i}>
                      {c}
                    </th>
                  ) : (
                    <td key={i}>{c}</td>
                  ),
                )}
                {r.values.map((v, i) => (
                  <td class="count" key={`v${i}`}>
                    <span class="bar" style={{ width: `${(6 * v) / max}rem` }} aria-hidden="true" />
                    <span class="n">{v}</span>
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </figure>
  );
}
