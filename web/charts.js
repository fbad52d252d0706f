// Hand-written SVG charts: a time series of bars (value axis, time axis with labels
// chosen for the window, a tooltip) and horizontal bars per category (names in full
// on the left). Drawn at the container's pixel width, so text is never squeezed;
// redrawn when the container changes size. Labels that would overlap are dropped
// after measuring them.
const NS = "http://www.w3.org/2000/svg";
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// 0, a round step, …, at least `max`: about `count` ticks.
export function niceTicks(max, count = 4) {
  if (max <= 0) return [0, 1];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const wholeStep = Math.max(1, step);
  const ticks = [];
  for (let v = 0; v < max + wholeStep; v += wholeStep) {
    ticks.push(v);
    if (v >= max) break;
  }
  return ticks;
}

const fmt = (options) => new Intl.DateTimeFormat(undefined, options);
const hourMinute = fmt({ hour: "2-digit", minute: "2-digit" });
const dayMonth = fmt({ month: "short", day: "numeric" });
const monthYear = fmt({ month: "short", year: "numeric" });
const full = fmt({ weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

// Candidate spacings between time labels, smallest first.
const STEPS = [15 * 60_000, 30 * 60_000, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY];

// Tick times between `from` and `to` (ms), at most `room` of them, on local
// boundaries: whole hours, midnights, Mondays, first days of months.
export function timeTicks(from, to, room) {
  const span = to - from;
  const step = STEPS.find((s) => span / s <= room) ?? STEPS.at(-1);
  const ticks = [];
  const start = new Date(from);
  if (step >= 30 * DAY) {
    const months = Math.round(step / (30 * DAY));
    const d = new Date(start.getFullYear(), start.getMonth(), 1);
    if (d.getTime() < from) d.setMonth(d.getMonth() + 1);
    while (d.getMonth() % months) d.setMonth(d.getMonth() + 1);
    for (; d.getTime() <= to; d.setMonth(d.getMonth() + months)) ticks.push(d.getTime());
  } else if (step >= DAY) {
    const days = step / DAY;
    const d = new Date(start.getFullYear(), start.getMonth(), start.getDate());
    if (d.getTime() < from) d.setDate(d.getDate() + 1);
    if (days === 7 || days === 14) while (d.getDay() !== 1) d.setDate(d.getDate() + 1);
    for (; d.getTime() <= to; d.setDate(d.getDate() + days)) ticks.push(d.getTime());
  } else {
    const d = new Date(start);
    d.setSeconds(0, 0);
    const minutes = step / 60_000;
    // Align on the local clock (minutes since local midnight).
    const sinceMidnight = d.getHours() * 60 + d.getMinutes();
    d.setMinutes(d.getMinutes() + ((minutes - (sinceMidnight % minutes)) % minutes));
    for (; d.getTime() <= to; d.setTime(d.getTime() + step)) {
      // Daylight-saving shifts: snap back to the grid.
      ticks.push(d.getTime());
    }
  }
  return { ticks, step };
}

function timeLabel(t, step, previous) {
  const d = new Date(t);
  if (step >= 30 * DAY) return d.getMonth() === 0 || previous === undefined ? monthYear.format(d) : fmt({ month: "short" }).format(d);
  if (step >= DAY) return dayMonth.format(d);
  const midnight = d.getHours() === 0 && d.getMinutes() === 0;
  const newDay = previous === undefined || new Date(previous).getDate() !== d.getDate();
  return midnight || (newDay && step >= 6 * HOUR) ? dayMonth.format(d) : hourMinute.format(d);
}

// Removes labels whose box overlaps the one kept before them, or would be cut off at
// either edge of the chart `width` wide (measured, not guessed).
function dropOverlaps(labels, width, gap = 6) {
  let lastRight = -Infinity;
  for (const label of labels) {
    const box = label.getBBox();
    if (box.x < Math.max(0, lastRight + gap) || box.x + box.width > width) label.remove();
    else lastRight = box.x + box.width;
  }
}

// Bars into buckets of `size` points (sums), so a year is 365 bars, not 8,760.
export function bucketize(points, size) {
  if (size <= 1) return points;
  const out = [];
  for (let i = 0; i < points.length; i += size) {
    const group = points.slice(i, i + size);
    out.push({ t: group[0].t, value: group.reduce((s, p) => s + p.value, 0), failed: group.reduce((s, p) => s + (p.failed || 0), 0) });
  }
  return out;
}

function describeBucket(point, bucketMs) {
  const end = new Date(point.t + bucketMs);
  const to = bucketMs >= DAY ? dayMonth.format(end) : hourMinute.format(end);
  return `${full.format(new Date(point.t))} – ${to}: ${point.value} event${point.value === 1 ? "" : "s"}${point.failed ? `, ${point.failed} failed` : ""}`;
}

// Redraws `draw` when the container's width changes.
const observed = new WeakMap();
function onResize(container, draw) {
  if (!observed.has(container)) {
    let width = container.clientWidth;
    const observer = new ResizeObserver(() => {
      if (container.clientWidth && container.clientWidth !== width) {
        width = container.clientWidth;
        observed.get(container)?.();
      }
    });
    observer.observe(container);
  }
  observed.set(container, draw);
}

// points: [{t (ms), value, failed}], one per bucket of `bucketMs`.
export function timeChart(container, points, { bucketMs = HOUR, height = 200, unit = "events" } = {}) {
  const draw = () => {
    const width = Math.max(280, container.clientWidth || 600);
    const m = { top: 10, right: 12, bottom: 28, left: 44 };
    const plotW = width - m.left - m.right;
    const plotH = height - m.top - m.bottom;
    const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "time-chart" });
    const max = Math.max(0, ...points.map((p) => p.value));
    const yTicks = niceTicks(max);
    const yMax = yTicks.at(-1);
    const y = (v) => m.top + plotH - (v / yMax) * plotH;
    for (const v of yTicks) {
      svg.append(svgEl("line", { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v), class: v ? "grid" : "axis" }));
      svg.append(svgEl("text", { x: m.left - 6, y: y(v) + 4, "text-anchor": "end", class: "y-label" }, v.toLocaleString()));
    }
    const from = points[0]?.t ?? Date.now();
    const to = (points.at(-1)?.t ?? from) + bucketMs;
    const x = (t) => m.left + ((t - from) / (to - from)) * plotW;
    const barW = Math.max(1, plotW / Math.max(1, points.length));
    const gap = barW > 4 ? 1 : 0;
    for (const p of points) {
      const bar = svgEl("rect", { x: x(p.t) + gap / 2, y: y(p.value), width: barW - gap, height: Math.max(0, y(0) - y(p.value)),
        "data-label": new Date(p.t).toISOString(), "data-value": p.value });
      bar.append(svgEl("title", {}, describeBucket(p, bucketMs)));
      svg.append(bar);
      if (p.failed) svg.append(svgEl("rect", { x: x(p.t) + gap / 2, y: y(p.failed), width: barW - gap, height: y(0) - y(p.failed), class: "failed" }));
    }
    const { ticks, step } = timeTicks(from, to, Math.max(2, Math.floor(plotW / 80)));
    const labels = [];
    ticks.forEach((t, i) => {
      svg.append(svgEl("line", { x1: x(t), x2: x(t), y1: y(0), y2: y(0) + 4, class: "axis" }));
      const label = svgEl("text", { x: x(t), y: height - 8, "text-anchor": "middle", class: "x-label" }, timeLabel(t, step, ticks[i - 1]));
      svg.append(label);
      labels.push(label);
    });
    const tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.hidden = true;
    svg.addEventListener("pointermove", (e) => {
      const box = svg.getBoundingClientRect();
      const i = Math.floor(((e.clientX - box.left) * (width / box.width) - m.left) / barW);
      const p = points[i];
      if (!p) { tip.hidden = true; return; }
      tip.textContent = describeBucket(p, bucketMs).replace("events", unit);
      tip.hidden = false;
      tip.style.left = `${Math.min(e.clientX - box.left + 12, box.width - tip.offsetWidth - 4)}px`;
      tip.style.top = `${e.clientY - box.top - 36}px`;
    });
    svg.addEventListener("pointerleave", () => { tip.hidden = true; });
    container.replaceChildren(svg, tip);
    dropOverlaps(labels, width);
  };
  onResize(container, draw);
  draw();
}

// bars: [{label, value, failed}], largest first; one row each, names in full.
export function barList(container, bars, { unit = "events" } = {}) {
  const draw = () => {
    const width = Math.max(280, container.clientWidth || 600);
    const row = 24;
    const nameW = Math.min(220, Math.round(width * 0.4));
    const valueW = 56;
    const height = Math.max(row, bars.length * row) + 4;
    const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "bar-list" });
    const max = Math.max(1, ...bars.map((b) => b.value));
    const plotW = width - nameW - valueW - 8;
    bars.forEach((bar, i) => {
      const top = i * row + 2;
      const name = svgEl("text", { x: nameW - 8, y: top + 16, "text-anchor": "end", class: "name" }, bar.label);
      name.append(svgEl("title", {}, bar.label));
      svg.append(name);
      const w = Math.max(1, (bar.value / max) * plotW);
      const rect = svgEl("rect", { x: nameW, y: top + 3, width: w, height: row - 8, "data-label": bar.label, "data-value": bar.value });
      rect.append(svgEl("title", {}, `${bar.label}: ${bar.value} ${unit}${bar.failed ? `, ${bar.failed} failed` : ""}`));
      svg.append(rect);
      if (bar.failed) svg.append(svgEl("rect", { x: nameW, y: top + 3, width: Math.max(1, (bar.failed / max) * plotW), height: row - 8, class: "failed" }));
      svg.append(svgEl("text", { x: nameW + w + 6, y: top + 16, class: "value" }, bar.failed ? `${bar.value} (${bar.failed} failed)` : String(bar.value)));
    });
    container.replaceChildren(svg);
    // A name longer than its column is cut with an ellipsis (the full name is its title).
    for (const name of svg.querySelectorAll("text.name")) {
      const full = name.firstChild.textContent;
      let text = full;
      while (name.getComputedTextLength() > nameW - 12 && text.length > 4) {
        text = text.slice(0, -2);
        name.firstChild.textContent = `${text}…`;
      }
    }
  };
  onResize(container, draw);
  draw();
}

// The statistics API's hourly points as chart points, in buckets that suit the window.
export function hourlyPoints(hourly) {
  const points = hourly.map((h) => ({ t: Date.parse(h.hour), value: h.total, failed: h.failed }));
  const size = points.length <= 168 ? 1 : points.length <= 720 ? 6 : 24;
  return { points: bucketize(points, size), bucketMs: size * HOUR };
}
