// Small SVG charts drawn at their container's width (redrawn when it changes). Colours come from
// CSS classes (dashboard.css), so light and dark themes need nothing here.

const NS = 'http://www.w3.org/2000/svg';

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
      const note = text(barX, y + 17, '', { class: 'small' });
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

function niceMax(x) {
  if (x <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= x) return m * p;
  return 10 * p;
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

// Cohort bars (users who started the funnel in the period, right axis) under the conversion-rate line
// (left axis). One slot per point: the API sends every period of the range, those nobody started in as
// zeros, so slots are periods and a gap of months is as wide as those months. An empty period has no
// conversion rate to draw (the API's 0 means "no cohort"): the line breaks there and it gets no dot.
export function trendChart(points, interval, width) {
  const height = 240;
  const m = { top: 16, right: 48, bottom: 34, left: 48 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const cohorts = points.map((p) => p.steps[0]?.users || 0);
  const said = (p, i) => `${p.period} ${cohorts[i] ? fmt.pct(p.conversionRate) : 'nobody started'}`;
  const label = `Conversion by ${interval.toLowerCase()}: ${points.map(said).join(', ')}`;
  const svg = frame(width, height, label);
  const rates = points.map((p) => p.conversionRate);
  const rMax = niceMax(Math.max(0.01, ...rates));
  const most = Math.max(1, ...cohorts);
  const cMax = most <= 8 ? Math.ceil(most / 4) * 4 : niceMax(most); // whole numbers on the 4 ticks
  const band = w / Math.max(1, points.length);
  const x = (i) => m.left + band * (i + 0.5);
  const yr = (r) => m.top + h - (r / rMax) * h;
  const yc = (c) => m.top + h - (c / cMax) * h;
  for (let t = 0; t <= 4; t++) {
    const r = (rMax * t) / 4;
    const y = yr(r);
    svg.append(el('line', { x1: m.left, x2: m.left + w, y1: y, y2: y, class: 'grid' }));
    svg.append(text(m.left - 6, y + 4, `${Math.round(100 * r * 10) / 10}%`, { class: 'axis', 'text-anchor': 'end' }));
    svg.append(text(m.left + w + 6, y + 4, fmt.int.format((cMax * t) / 4), { class: 'axis' }));
  }
  const multiYear = new Set(points.map((p) => p.period.slice(0, 4))).size > 1;
  const slot = interval !== 'MONTH' && multiYear ? 92 : 64; // "Dec 29, 2014" needs more room than "Dec 29"
  const every = Math.max(1, Math.ceil(points.length / Math.max(1, Math.floor(w / slot))));
  const shown = labelledBars(points.length, every);
  const labels = trendLabels(points.map((p) => p.period), interval, shown);
  points.forEach((p, i) => {
    const bw = Math.min(56, Math.max(2, band * 0.62));
    svg.append(
      titled(
        el('rect', { x: x(i) - bw / 2, y: yc(cohorts[i]), width: bw, height: m.top + h - yc(cohorts[i]), class: 'cohort' }),
        `${p.period}: ${fmt.int.format(cohorts[i])} users started`,
      ),
    );
  });
  shown.forEach((i, k) => {
    svg.append(text(x(i), height - m.bottom + 18, labels[k], { class: 'axis period', 'text-anchor': 'middle' }));
  });
  const d = points
    .map((p, i) => (cohorts[i] ? `${i && cohorts[i - 1] ? 'L' : 'M'}${x(i).toFixed(1)},${yr(p.conversionRate).toFixed(1)}` : ''))
    .filter(Boolean)
    .join(' ');
  if (d) svg.append(el('path', { d, class: 'line' }));
  points.forEach((p, i) => {
    if (!cohorts[i]) return;
    svg.append(
      titled(
        el('circle', { cx: x(i), cy: yr(p.conversionRate), r: 4, class: 'dot' }),
        `${p.period}: ${fmt.pct(p.conversionRate)} converted`,
      ),
    );
  });
  svg.append(text(m.left, 11, 'conversion', { class: 'axis legend-line' }));
  svg.append(text(m.left + w, 11, 'users starting', { class: 'axis legend-bar', 'text-anchor': 'end' }));
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
