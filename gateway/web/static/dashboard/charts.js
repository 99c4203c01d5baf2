// Small SVG charts drawn at their container's width (redrawn when it changes). Colours come from
// CSS classes (dashboard.css), so light and dark themes need nothing here.

import { layoutSlots, trendSlots } from './slots.js';

const NS = 'http://www.w3.org/2000/svg';
const COMPACT_MONEY = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  notation: 'compact',
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});

export const fmt = {
  int: new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 }),
  dec: new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 }),
  pct(x) {
    return x == null ? '–' : `${(100 * x).toFixed(1)}%`;
  },
  seconds(s) {
    if (s == null) return '–';
    if (s < 90) return `${fmt.dec.format(s)} s`;
    if (s < 5400) return `${fmt.dec.format(s / 60)} min`;
    if (s < 172800) return `${fmt.dec.format(s / 3600)} h`;
    return `${fmt.dec.format(s / 86400)} d`;
  },
  money: new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' }),
  // To the cent below a million dollars; from there "$3.0B", so a tile's figure fits its tile (the
  // caller puts the exact amount in a title).
  moneyFit(x) {
    return Math.abs(x) < 1e6 ? fmt.money.format(x) : COMPACT_MONEY.format(x);
  },
};

export function el(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  for (const c of children) if (c != null) node.append(c);
  return node;
}

function text(x, y, content, attrs = {}) {
  return el('text', { x, y, ...attrs }, String(content));
}

function titled(node, title) {
  node.append(el('title', {}, title));
  return node;
}

let measure = null;

// The rendered width of `content` in the chart's label font (a canvas measures it without drawing).
export function textWidth(content, font = '600 14px system-ui, sans-serif') {
  measure = measure || document.createElement('canvas').getContext('2d');
  measure.font = font;
  return measure.measureText(content).width;
}

// `content` cut with an ellipsis to fit `width` pixels.
function fitted(content, width, font) {
  if (textWidth(content, font) <= width) return content;
  let cut = content;
  while (cut.length > 1 && textWidth(`${cut}…`, font) > width) cut = cut.slice(0, -1);
  return `${cut}…`;
}

function frame(width, height, label) {
  return el('svg', {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': label,
    class: 'chart',
  });
}

// Redraw `draw(width)` into `container` now and whenever its width changes.
export function responsive(container, draw) {
  container._render = () => {
    const width = Math.max(240, Math.floor(container.clientWidth));
    if (container._drawnWidth === width) return;
    container._drawnWidth = width;
    container.replaceChildren(draw(width));
  };
  // One observer per container for its lifetime; it calls whatever was drawn last (container._render),
  // never the closure of the first call, so a resize redraws the current chart with its current data.
  if (!container._observer) {
    container._observer = new ResizeObserver(() => container._render?.());
    container._observer.observe(container);
  }
  container._drawnWidth = null;
  container._render();
}

// Empties a container `responsive` drew into and stops it redrawing: emptying it changes the layout
// (a scrollbar goes), and the resize that follows would otherwise draw the last chart back.
export function clearChart(container, ...nodes) {
  container._render = null;
  container.replaceChildren(...nodes);
}

// Horizontal funnel: one bar per step, scaled to the largest step; the part lost since the previous
// step is drawn as a pale "ghost", and the conversion and drop-off between two steps are written
// between their bars.
export function funnelChart(steps, width) {
  const narrow = width < 520;
  const longest = Math.max(0, ...steps.map((s) => textWidth(s.name)));
  const labelW = narrow ? 0 : Math.min(Math.ceil(longest) + 4, Math.round(width * 0.34));
  const valueW = narrow ? 96 : 118;
  const barX = narrow ? 0 : labelW + 12;
  const barW = Math.max(40, width - barX - valueW - 8);
  const barH = 30;
  const noteH = 26;
  const labelH = narrow ? 20 : 0;
  const top = Math.max(1, ...steps.map((s) => s.users));
  const label = `Funnel: ${steps.map((s) => `${s.name} ${s.users} users`).join(', ')}`;
  const parts = [];
  let y = 4;
  steps.forEach((step, i) => {
    if (i > 0) {
      const dropped = Math.max(0, steps[i - 1].users - step.users);
      const note = text(barX, y + 17, '', { class: 'small note' });
      // Nobody at the step before: no one to continue or drop off (the API's rates are 0 there).
      if (steps[i - 1].users === 0) note.append(el('tspan', { class: 'muted' }, 'no one reached this step'));
      else
        note.append(
          el('tspan', { class: 'good' }, `↓ ${fmt.pct(step.conversionRate)} continue`),
          el('tspan', { class: 'muted' }, '  ·  '),
          el('tspan', { class: 'drop' }, `${fmt.int.format(dropped)} dropped off (${fmt.pct(step.dropOffRate)})`),
        );
      parts.push(note);
      y += noteH;
    }
    if (narrow) {
      parts.push(text(0, y + 14, fitted(step.name, width - valueW), { class: 'label' }));
      y += labelH;
    } else {
      const name = titled(text(labelW, y + barH / 2 + 5, fitted(step.name, labelW), { class: 'label', 'text-anchor': 'end' }), step.name);
      parts.push(name);
    }
    if (i > 0) {
      const prevW = (steps[i - 1].users / top) * barW;
      parts.push(
        titled(
          el('rect', { x: barX, y, width: prevW, height: barH, rx: 4, class: 'ghost' }),
          `${fmt.int.format(steps[i - 1].users - step.users)} dropped off before ${step.name}`,
        ),
      );
    }
    const w = (step.users / top) * barW;
    parts.push(
      titled(
        el('rect', { x: barX, y, width: Math.max(step.users ? 2 : 0, w), height: barH, rx: 4, class: 'bar' }),
        `${step.name}: ${fmt.int.format(step.users)} users, ${fmt.pct(step.conversionFromStart)} of the first step`,
      ),
    );
    const vx = barX + barW + 12;
    parts.push(text(vx, y + 13, fmt.int.format(step.users), { class: 'value' }));
    parts.push(text(vx, y + 28, `${fmt.pct(step.conversionFromStart)} of start`, { class: 'small muted' }));
    y += barH;
  });
  const svg = frame(width, y + 4, label);
  svg.append(...parts);
  return svg;
}

// An axis of 4 equal steps from 0 whose every tick is a short number shown exactly: the step is 1, 1.5,
// 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten (a whole number when `whole`: counts), the max is 4
// steps, and `decimals` is what the step needs, so no label rounds ("0.3%" on the 0.25% line).
export function axisTicks(x, whole = false) {
  const want = Math.max(x, 1e-9) / 4;
  for (let p = 10 ** Math.floor(Math.log10(want)); ; p *= 10) {
    for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8]) {
      const step = Number((m * p).toPrecision(6));
      if (step < want || (whole && !Number.isInteger(step))) continue;
      let decimals = 0;
      while (Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-9) decimals += 1;
      const ticks = [0, 1, 2, 3, 4].map((t) => Number((step * t).toFixed(decimals)));
      return { max: ticks[4], ticks, decimals };
    }
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// `withYear`: weeks and days name their year too (months always do), so periods years apart never read
// as neighbours ("Dec 29, 2014" beside "Dec 1, 2025", not "Dec 29" beside "Dec 1").
export function periodLabel(period, interval, withYear = false) {
  const [y, m, d] = period.split('-').map(Number);
  if (interval === 'MONTH') return `${MONTHS[m - 1]} ${y}`;
  return withYear ? `${MONTHS[m - 1]} ${d}, ${y}` : `${MONTHS[m - 1]} ${d}`;
}

// Which bars get a label: one every `every` bars from the first, and always the last (the latest
// period is the one people look for); the label before it goes when the two would collide.
export function labelledBars(count, every) {
  const last = count - 1;
  const shown = [];
  for (let i = 0; i < count; i += every) if (i === 0 || last - i >= every) shown.push(i);
  if (count && shown[shown.length - 1] !== last) shown.push(last);
  return shown;
}

// Period labels of a trend: with the year on the first label and wherever the year changes when the
// periods span more than one calendar year.
export function trendLabels(periods, interval, shown) {
  const year = (i) => periods[i].slice(0, 4);
  const years = new Set(periods.map((p) => p.slice(0, 4)));
  return shown.map((i, k) => {
    const withYear = years.size > 1 && (k === 0 || year(i) !== year(shown[k - 1]));
    return periodLabel(periods[i], interval, withYear);
  });
}

// Which periods get an axis label, given each period slot's centre `xs` (in order) and the first
// slot of each run between breaks (`starts`). Every `every` slots as labelledBars picks them within each
// run; then, most wanted first (the latest period, the first of each run, the rest), a label is kept
// when it stays `room` px clear of those kept. Without breaks that is labelledBars' choice.
export function spacedLabels(xs, starts, every, room) {
  const runs = starts.map((s, k) => [s, k + 1 < starts.length ? starts[k + 1] : xs.length]);
  const wanted = runs.flatMap(([a, b]) => labelledBars(b - a, every).map((i) => a + i));
  const last = xs.length - 1;
  const order = [last, ...starts, ...wanted].filter((i, k, all) => i >= 0 && all.indexOf(i) === k);
  const kept = [];
  for (const i of order) if (kept.every((j) => Math.abs(xs[i] - xs[j]) > room - 0.5)) kept.push(i);
  return kept.sort((a, b) => a - b);
}

function spanText(points, gap, interval) {
  const unit = { DAY: 'day', WEEK: 'week', MONTH: 'month' }[interval] || 'period';
  const n = gap.to - gap.from + 1;
  const from = periodLabel(points[gap.from].period, interval, true);
  const to = periodLabel(points[gap.to].period, interval, true);
  return { n, unit: `${unit}${n === 1 ? '' : 's'}`, from, to };
}

// Cohort bars (users who started the funnel in the period, right axis) under the conversion-rate line
// (left axis). The API sends every period of the range, those nobody started in as zeros: a period is
// a slot, and a short run of empty ones keeps its slots (no bar, no dot). A long run (slots.js) is one
// narrow break, drawn dashed and saying which periods it stands for, so data years apart keeps the
// width instead of 600 empty weeks. An empty period has no conversion rate to draw (the API's 0 means
// "no cohort"): the line breaks there, and across every break.
export function trendChart(points, interval, width) {
  const height = 240;
  const m = { top: 28, right: 48, bottom: 34, left: 48 }; // the legends sit above the plot, clear of a top dot
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const cohorts = points.map((p) => p.steps[0]?.users || 0);
  const { slots, band } = layoutSlots(trendSlots(cohorts), m.left, w);
  const said = (s) => {
    if (s.kind === 'gap') {
      const g = spanText(points, s, interval);
      return `${points[s.from].period} to ${points[s.to].period} nobody started (${g.n} ${g.unit}, drawn as a break)`;
    }
    const p = points[s.index];
    return `${p.period} ${cohorts[s.index] ? fmt.pct(p.conversionRate) : 'nobody started'}`;
  };
  const label = `Conversion by ${interval.toLowerCase()}: ${slots.map(said).join(', ')}`;
  const svg = frame(width, height, label);
  const periodSlots = slots.filter((s) => s.kind === 'period');
  const gapSlots = slots.filter((s) => s.kind === 'gap');
  svg.dataset.periods = String(periodSlots.length);
  svg.dataset.gaps = String(gapSlots.length);
  // A cohort under a fifth of the median one is thin: its rate rests on a few users, so it neither sets
  // the rate axis (10 users converting at 30% would flatten weeks of 300 at 4%) nor is drawn as firmly.
  const filled = cohorts.filter((c) => c > 0).sort((a, b) => a - b);
  const median = filled.length ? filled[Math.floor((filled.length - 1) / 2)] : 0;
  const thin = cohorts.map((c) => c > 0 && c * 5 < median);
  const rates = points.filter((p, i) => cohorts[i] && !thin[i]).map((p) => p.conversionRate);
  // Both axes in 4 exact steps: the rate's in percent (at least 1%), the count's in whole users.
  const pctAxis = axisTicks(100 * Math.max(0.01, ...rates));
  const countAxis = axisTicks(Math.max(1, ...cohorts), true);
  const rMax = pctAxis.max / 100;
  const cMax = countAxis.max;
  const x = new Map(periodSlots.map((s) => [s.index, s.centre]));
  const yr = (r) => m.top + h - (Math.min(r, rMax) / rMax) * h; // a thin rate above the axis: at its top
  const yc = (c) => m.top + h - (c / cMax) * h;
  for (let t = 0; t <= 4; t++) {
    const y = yc(countAxis.ticks[t]);
    svg.append(el('line', { x1: m.left, x2: m.left + w, y1: y, y2: y, class: 'grid' }));
    svg.append(text(m.left - 6, y + 4, `${pctAxis.ticks[t].toFixed(pctAxis.decimals)}%`, { class: 'axis tick-rate', 'text-anchor': 'end' }));
    svg.append(text(m.left + w + 6, y + 4, fmt.int.format(countAxis.ticks[t]), { class: 'axis tick-count' }));
  }
  gapSlots.forEach((s) => {
    const g = spanText(points, s, interval);
    const cx = s.centre + 4; // the rotated text's glyphs lie left of its baseline: centre them
    const bottom = m.top + h - 4;
    const marker = el('g', { class: 'gap', 'data-from': points[s.from].period, 'data-to': points[s.to].period });
    marker.append(
      // First, so it names the group (its tooltip and accessible name).
      el('title', {}, `Nobody started the funnel in the ${g.n} ${g.unit} from ${g.from} to ${g.to}: drawn as one break, not to scale`),
      el('rect', { x: s.left, y: m.top, width: s.width, height: h, class: 'gap-band' }),
      el('line', { x1: s.left, x2: s.left, y1: m.top, y2: m.top + h, class: 'gap-line' }),
      el('line', { x1: s.left + s.width, x2: s.left + s.width, y1: m.top, y2: m.top + h, class: 'gap-line' }),
      text(cx, bottom, fitted(`no entrants · ${g.n} ${g.unit}`, h - 8, '11.5px system-ui, sans-serif'), {
        class: 'axis gap-text',
        transform: `rotate(-90 ${cx} ${bottom})`,
      }),
    );
    svg.append(marker);
  });
  const multiYear = new Set(points.map((p) => p.period.slice(0, 4))).size > 1;
  const room = interval !== 'MONTH' && multiYear ? 92 : 64; // "Dec 29, 2014" needs more room than "Dec 29"
  const periodsW = w - gapSlots.reduce((sum, s) => sum + s.width, 0);
  const every = Math.max(1, Math.ceil(periodSlots.length / Math.max(1, Math.floor(periodsW / room))));
  const starts = [];
  slots.forEach((s, k) => {
    if (s.kind === 'period' && (k === 0 || slots[k - 1].kind === 'gap')) starts.push(periodSlots.indexOf(s));
  });
  const shown = spacedLabels(periodSlots.map((s) => s.centre), starts, every, room).map((k) => periodSlots[k].index);
  const labels = trendLabels(points.map((p) => p.period), interval, shown);
  const bw = Math.min(56, Math.max(2, band * 0.62));
  periodSlots.forEach(({ index: i }) => {
    svg.append(
      titled(
        el('rect', { x: x.get(i) - bw / 2, y: yc(cohorts[i]), width: bw, height: m.top + h - yc(cohorts[i]), class: 'cohort' }),
        `${points[i].period}: ${fmt.int.format(cohorts[i])} users started`,
      ),
    );
  });
  shown.forEach((i, k) => {
    svg.append(text(x.get(i), height - m.bottom + 18, labels[k], { class: 'axis period', 'text-anchor': 'middle' }));
  });
  // A segment joins two neighbouring slots that both had entrants: never across a break. One to or
  // from a thin period is dashed.
  const solid = [];
  const dashed = [];
  slots.forEach((s, k) => {
    if (s.kind !== 'period' || !cohorts[s.index]) return;
    const i = s.index;
    const at = `${s.centre.toFixed(1)},${yr(points[i].conversionRate).toFixed(1)}`;
    const prev = slots[k - 1];
    const joined = prev?.kind === 'period' && cohorts[prev.index];
    if (joined && (thin[i] || thin[prev.index])) {
      dashed.push(`M${prev.centre.toFixed(1)},${yr(points[prev.index].conversionRate).toFixed(1)} L${at}`);
    }
    if (!thin[i]) solid.push(`${joined && !thin[prev.index] ? 'L' : 'M'}${at}`);
  });
  if (solid.length) svg.append(el('path', { d: solid.join(' '), class: 'line' }));
  if (dashed.length) svg.append(el('path', { d: dashed.join(' '), class: 'line-thin' }));
  periodSlots.forEach(({ index: i }) => {
    if (!cohorts[i]) return;
    const rate = points[i].conversionRate;
    const few = thin[i] ? `, of only ${fmt.int.format(cohorts[i])} users${rate > rMax ? ' (above the axis)' : ''}` : '';
    svg.append(
      titled(
        el('circle', { cx: x.get(i), cy: yr(rate), r: thin[i] ? 3 : 4, class: thin[i] ? 'dot thin' : 'dot' }),
        `${points[i].period}: ${fmt.pct(rate)} converted${few}`,
      ),
    );
  });
  svg.append(text(m.left, 12, 'conversion', { class: 'axis legend-line' }));
  svg.append(text(m.left + w, 12, 'users starting', { class: 'axis legend-bar', 'text-anchor': 'end' }));
  return svg;
}

// A small area chart of recent values (the live events per minute).
export function sparkline(values, width, height = 56) {
  const svg = frame(width, height, `recent values: ${values.map((v) => fmt.dec.format(v)).join(', ')}`);
  if (values.length < 2) return svg;
  const max = Math.max(1, ...values);
  const step = width / (values.length - 1);
  const pts = values.map((v, i) => [i * step, height - 3 - (v / max) * (height - 8)]);
  const line = pts.map(([px, py], i) => `${i ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join(' ');
  svg.append(el('path', { d: `${line} L${width},${height} L0,${height} Z`, class: 'spark-area' }));
  svg.append(el('path', { d: line, class: 'spark-line' }));
  return svg;
}
