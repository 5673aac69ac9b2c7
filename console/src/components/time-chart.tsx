import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  values: (number | null)[];
  /** A CSS colour; paired with a dash pattern so series differ without colour too. */
  stroke: string;
  dash?: number[];
  scale?: "ms" | "%";
}

/** A uPlot line chart over time (x in seconds since the epoch), sized to its container. */
export function TimeChart({ title, x, series }: { title: string; x: number[]; series: Series[] }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = () => Math.max(280, el.clientWidth);
    // One y scale per chart: milliseconds, or a percentage from 0 to 100.
    const scale = series[0]?.scale ?? "ms";
    const plot = new uPlot(
      {
        width: width(),
        height: 240,
        scales: { x: { time: true }, ms: { auto: true }, "%": { auto: false, range: [0, 100] } },
        axes: [{}, { scale, label: scale }],
        series: [
          { label: "time" },
          ...series.map((s) => ({
            label: s.label,
            stroke: s.stroke,
            dash: s.dash,
            width: 2,
            scale,
            spanGaps: false,
            points: { show: true, size: 5 },
          })),
        ],
      },
      [x, ...series.map((s) => s.values)] as uPlot.AlignedData,
      el,
    );
    const observer = new ResizeObserver(() => plot.setSize({ width: width(), height: 240 }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [x, series]);
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} />
    </figure>
  );
}
