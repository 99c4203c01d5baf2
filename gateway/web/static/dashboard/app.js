// The funnel dashboard: every number comes from the gateway's public GraphQL API (api.js).
import { ApiError, LiveClient, errorsAt, query } from './api.js';
import { fmt, funnelChart, responsive, sparkline, trendChart } from './charts.js';

const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

// ---- queries ---------------------------------------------------------------------------------------

const DEFINITION_VARS = '$steps: [String!], $filter: FunnelFilter, $order: StepOrder!, $window: Int';
const DEFINITION_ARGS = 'steps: $steps, filter: $filter, order: $order, conversionWindowSeconds: $window';

const FUNNEL = `query DashboardFunnel(${DEFINITION_VARS}) {
  funnel(${DEFINITION_ARGS}) {
    overallConversionRate
    steps { name users conversionRate dropOffRate conversionFromStart avgTimeSpent medianTimeToConvert }
  }
}`;

const TREND = `query DashboardTrend($interval: Interval!, ${DEFINITION_VARS}) {
  funnelTrend(interval: $interval, ${DEFINITION_ARGS}) {
    period conversionRate steps { users }
  }
}`;

const TOTALS = `query DashboardTotals($range: DateRange) {
  dashboard(range: $range) { users sessions conversions conversionRate revenue }
}`;

const PAGE_TYPES = 'query DashboardPageTypes { pageTypes }';

const HEALTH = 'query DashboardHealth { health { status dependencies { role backend up } } }';

const USER = `query DashboardUser($id: Int!) {
  user(id: $id) {
    id device sex date converted
    sessions { id startTime endTime device pagesVisited totalInteractions converted conversionValue }
    journey { furthestStep converted timeToConvertSeconds visits { pageType timestamp duration sessionId } }
    similarUsers(limit: 8) { userId score user { device converted } }
    conversionLikelihood
  }
}`;

const LIVE = `subscription DashboardLive {
  realtimeMetrics(intervalSeconds: 1) {
    at activeUsers eventsPerMinute conversionsPerMinute steps { name usersToday }
  }
}`;

// ---- state -----------------------------------------------------------------------------------------

const state = {
  filters: { device: '', sex: '', start: '', end: '', order: 'ORDERED', window: '' },
  steps: null, // null: the dataset's default funnel
  defaultSteps: [],
  pageTypes: [],
  interval: 'WEEK',
};

function filterInput() {
  const f = state.filters;
  const filter = {};
  if (f.device) filter.device = f.device;
  if (f.sex) filter.sex = f.sex;
  if (f.start) filter.start = f.start;
  if (f.end) filter.end = f.end;
  return Object.keys(filter).length ? filter : null;
}

function definition() {
  return {
    steps: state.steps,
    filter: filterInput(),
    order: state.filters.order,
    window: state.filters.window ? Number(state.filters.window) : null,
  };
}

function shownSteps() {
  return state.steps || state.defaultSteps;
}

// A panel's request in flight: a newer one makes the older answer stale (dropped).
function latest() {
  let counter = 0;
  return () => {
    const mine = ++counter;
    return () => mine === counter;
  };
}

function showState(node, message, kind = '', retry = null) {
  node.replaceChildren();
  node.className = `state ${kind}`.trim();
  node.hidden = !message;
  if (!message) return;
  node.append(h('span', { text: message }));
  if (retry) node.append(h('button', { type: 'button', class: 'link', onclick: retry, text: 'Try again' }));
}

function describe(error) {
  if (error instanceof ApiError) {
    const code = error.errors?.[0]?.extensions?.code;
    return code ? `${error.message} (${code})` : error.message;
  }
  return String(error?.message || error);
}

function busy(panel, on) {
  panel.setAttribute('aria-busy', on ? 'true' : 'false');
  panel.classList.toggle('is-loading', on);
}

// ---- funnel ----------------------------------------------------------------------------------------

const funnelTurn = latest();

async function loadFunnel() {
  const current = funnelTurn();
  const panel = $('funnel-panel');
  busy(panel, true);
  try {
    const { data } = await query(FUNNEL, definition());
    if (!current()) return;
    renderFunnel(data.funnel);
    showState($('funnel-state'), '');
  } catch (error) {
    if (!current()) return;
    $('funnel-chart').replaceChildren();
    $('funnel-table').tBodies[0].replaceChildren();
    $('funnel-overall').textContent = '–';
    const noData = /no default funnel/i.test(error.message);
    const message = noData
      ? 'No data yet: ingest a dataset (make demo-data) or post events to /events.'
      : `The funnel could not be loaded: ${describe(error)}`;
    showState($('funnel-state'), message, 'error', noData ? null : loadFunnel);
  } finally {
    if (current()) busy(panel, false);
  }
}

function renderFunnel(funnel) {
  const steps = funnel.steps;
  if (state.steps === null) {
    state.defaultSteps = steps.map((s) => s.name);
    renderStepPicker();
  }
  $('funnel-overall').textContent = fmt.pct(funnel.overallConversionRate);
  const box = $('funnel-chart');
  if (!steps.length || steps[0].users === 0) {
    box.replaceChildren(h('p', { class: 'empty', text: 'Nobody reached the first step with these filters.' }));
  } else {
    responsive(box, (width) => funnelChart(steps, width));
  }
  const rows = steps.map((s, i) =>
    h(
      'tr',
      { 'data-step': s.name },
      h('th', { scope: 'row', text: s.name }),
      h('td', { class: 'num users', text: fmt.int.format(s.users) }),
      h('td', { class: 'num', text: i === 0 ? '–' : fmt.pct(s.conversionRate) }),
      h('td', { class: 'num', text: i === 0 ? '–' : fmt.pct(s.dropOffRate) }),
      h('td', { class: 'num', text: fmt.pct(s.conversionFromStart) }),
      h('td', { class: 'num', text: fmt.seconds(s.avgTimeSpent) }),
      h('td', { class: 'num', text: i === 0 ? '–' : fmt.seconds(s.medianTimeToConvert) }),
    ),
  );
  $('funnel-table').tBodies[0].replaceChildren(...rows);
}

// ---- step picker -----------------------------------------------------------------------------------

function setSteps(steps) {
  const same = steps.length === state.defaultSteps.length && steps.every((s, i) => s === state.defaultSteps[i]);
  state.steps = same ? null : steps;
  renderStepPicker();
  if (shownSteps().length >= 2) refreshFunnels();
}

function renderStepPicker() {
  const steps = shownSteps();
  const list = $('step-list');
  list.replaceChildren(
    ...steps.map((name, i) => {
      const move = (delta) => () => {
        const next = [...steps];
        [next[i], next[i + delta]] = [next[i + delta], next[i]];
        setSteps(next);
      };
      return h(
        'li',
        { class: 'step-chip', 'data-step': name },
        h('span', { class: 'step-index', text: String(i + 1) }),
        h('span', { class: 'step-name', text: name }),
        h('button', { type: 'button', class: 'icon', 'aria-label': `Move ${name} earlier`, title: 'Earlier', disabled: i === 0, onclick: move(-1), text: '‹' }),
        h('button', { type: 'button', class: 'icon', 'aria-label': `Move ${name} later`, title: 'Later', disabled: i === steps.length - 1, onclick: move(1), text: '›' }),
        h('button', { type: 'button', class: 'icon', 'aria-label': `Remove ${name}`, title: 'Remove', onclick: () => setSteps(steps.filter((s) => s !== name)), text: '×' }),
      );
    }),
  );
  const add = $('step-add');
  const remaining = state.pageTypes.filter((p) => !steps.includes(p));
  add.replaceChildren(
    h('option', { value: '', text: remaining.length ? '+ add a step' : 'every page is a step' }),
    ...remaining.map((p) => h('option', { value: p, text: p })),
  );
  add.disabled = remaining.length === 0;
  $('step-reset').disabled = state.steps === null;
  $('steps-hint').textContent = steps.length < 2 ? 'Pick at least two steps.' : '';
}

async function loadPageTypes() {
  try {
    const { data } = await query(PAGE_TYPES);
    state.pageTypes = data.pageTypes;
  } catch (error) {
    $('steps-hint').textContent = `Page types unavailable: ${describe(error)}`;
  }
  renderStepPicker();
}

// ---- trend -----------------------------------------------------------------------------------------

const trendTurn = latest();

async function loadTrend() {
  const current = trendTurn();
  const panel = $('trend-panel');
  busy(panel, true);
  try {
    const { data } = await query(TREND, { interval: state.interval, ...definition() });
    if (!current()) return;
    const points = data.funnelTrend;
    if (!points.length) {
      $('trend-chart').replaceChildren();
      showState($('trend-state'), 'No user started this funnel in the range.', 'empty');
    } else {
      showState($('trend-state'), '');
      responsive($('trend-chart'), (width) => trendChart(points, state.interval, width));
    }
  } catch (error) {
    if (!current()) return;
    $('trend-chart').replaceChildren();
    showState($('trend-state'), `The trend could not be loaded: ${describe(error)}`, 'error', loadTrend);
  } finally {
    if (current()) busy(panel, false);
  }
}

// ---- totals ----------------------------------------------------------------------------------------

const totalsTurn = latest();

async function loadTotals() {
  const current = totalsTurn();
  const panel = $('kpis');
  busy(panel, true);
  const f = state.filters;
  const range = f.start || f.end ? { start: f.start || null, end: f.end || null } : null;
  try {
    const { data } = await query(TOTALS, { range });
    if (!current()) return;
    const d = data.dashboard;
    $('kpi-users').textContent = fmt.int.format(d.users);
    $('kpi-sessions').textContent = fmt.int.format(d.sessions);
    $('kpi-conversions').textContent = fmt.int.format(d.conversions);
    $('kpi-rate').textContent = fmt.pct(d.conversionRate);
    $('kpi-revenue').textContent = fmt.money.format(d.revenue);
    panel.classList.remove('failed');
    panel.removeAttribute('title');
  } catch (error) {
    if (!current()) return;
    for (const id of ['kpi-users', 'kpi-sessions', 'kpi-conversions', 'kpi-rate', 'kpi-revenue']) $(id).textContent = '–';
    panel.classList.add('failed');
    panel.title = `Totals unavailable: ${describe(error)}`;
  } finally {
    if (current()) busy(panel, false);
  }
}

function refreshFunnels() {
  loadFunnel();
  loadTrend();
}

// ---- filters ---------------------------------------------------------------------------------------

function readFilters() {
  const form = $('filters');
  for (const key of Object.keys(state.filters)) state.filters[key] = form.elements[key].value;
  const { start, end } = state.filters;
  const inverted = start && end && start > end;
  $('steps-hint').textContent = inverted ? 'The range ends before it starts.' : '';
  return !inverted;
}

let filterTimer = null;
function filtersChanged() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    if (!readFilters()) return;
    loadTotals();
    if (shownSteps().length >= 2 || state.steps === null) refreshFunnels();
  }, 120);
}

// ---- live ------------------------------------------------------------------------------------------

const history = [];
const STATUS_TEXT = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…', unauthorized: 'no access', idle: 'paused' };

function liveStatus(status, detail) {
  const pill = $('live-status');
  pill.textContent = STATUS_TEXT[status] || status;
  pill.dataset.state = status;
  pill.title = detail || '';
}

function setNumber(node, value) {
  if (node.textContent === value) return;
  node.textContent = value;
  node.classList.remove('bump');
  void node.offsetWidth; // restart the animation
  node.classList.add('bump');
}

function renderLive(metrics) {
  setNumber($('live-active'), fmt.int.format(metrics.activeUsers));
  setNumber($('live-epm'), fmt.dec.format(metrics.eventsPerMinute));
  setNumber($('live-cpm'), fmt.dec.format(metrics.conversionsPerMinute));
  history.push(metrics.eventsPerMinute);
  if (history.length > 90) history.shift();
  responsive($('live-spark'), (width) => sparkline([...history], width));
  const top = Math.max(1, ...metrics.steps.map((s) => s.usersToday));
  $('live-steps').replaceChildren(
    ...metrics.steps.map((s) => {
      const fill = h('span', { class: 'fill' });
      fill.style.width = `${(100 * s.usersToday) / top}%`;
      return h(
        'li',
        { 'data-step': s.name },
        h('span', { class: 'live-step-name', title: s.name, text: s.name }),
        h('span', { class: 'meter', 'aria-hidden': 'true' }, fill),
        h('span', { class: 'live-step-value', text: fmt.int.format(s.usersToday) }),
      );
    }),
  );
  $('live-at').textContent = `Updated ${new Date(metrics.at).toLocaleTimeString()}`;
}

function startLive() {
  const client = new LiveClient(liveStatus);
  client.subscribe(LIVE, {}, {
    next(payload) {
      if (payload.errors?.length) {
        liveStatus('degraded', payload.errors[0].message);
        $('live-status').textContent = 'live metrics paused';
        $('live-at').textContent = payload.errors[0].message;
        return;
      }
      if (payload.data?.realtimeMetrics) {
        liveStatus('live');
        renderLive(payload.data.realtimeMetrics);
      }
    },
    error(error) {
      liveStatus('error', describe(error));
      $('live-status').textContent = 'unavailable';
      $('live-at').textContent = `Live metrics unavailable: ${describe(error)}`;
    },
    complete() {
      liveStatus('idle');
    },
  });
}

// ---- health ----------------------------------------------------------------------------------------

const ROLE_NAMES = { document_store: 'document store', vector_index: 'vector index', cache: 'cache' };

async function loadHealth() {
  const pill = $('health');
  try {
    const { data } = await query(HEALTH);
    const down = data.health.dependencies.filter((d) => !d.up);
    pill.dataset.state = down.length ? 'degraded' : 'ok';
    pill.textContent = down.length
      ? `${down.map((d) => `${ROLE_NAMES[d.role] || d.role} (${d.backend})`).join(', ')} down`
      : 'all backends up';
    pill.title = data.health.dependencies.map((d) => `${d.role}: ${d.backend} ${d.up ? 'up' : 'down'}`).join('\n');
  } catch (error) {
    pill.dataset.state = 'error';
    pill.textContent = error.status === 0 ? 'gateway unreachable' : 'health unknown';
    pill.title = describe(error);
  }
}

// ---- user lookup -----------------------------------------------------------------------------------

const userTurn = latest();

function utc(iso) {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : '–';
}

function seconds(a, b) {
  return (new Date(b) - new Date(a)) / 1000;
}

function pageChip(name) {
  const index = state.defaultSteps.indexOf(name);
  return h('span', { class: `page-chip${index >= 0 ? ` step-${Math.min(index, 5)}` : ''}`, text: name });
}

async function lookUp(id) {
  const current = userTurn();
  const panel = $('user-panel');
  $('user-id').value = String(id);
  busy(panel, true);
  showState($('user-state'), `Looking up user ${id}…`);
  try {
    const { data, errors } = await query(USER, { id });
    if (!current()) return;
    if (!data.user) {
      $('user-result').hidden = true;
      const notFound = errorsAt(errors, 'user').some((e) => e.extensions?.code === 'NOT_FOUND');
      showState($('user-state'), notFound ? `There is no user ${id}.` : `User ${id} could not be loaded: ${errors[0]?.message || ''}`, notFound ? 'empty' : 'error');
      return;
    }
    showState($('user-state'), '');
    renderUser(data.user, errors);
    $('user-result').hidden = false;
  } catch (error) {
    if (!current()) return;
    $('user-result').hidden = true;
    showState($('user-state'), `User ${id} could not be loaded: ${describe(error)}`, 'error', () => lookUp(id));
  } finally {
    if (current()) busy(panel, false);
  }
}

function fact(label, value) {
  return h('div', { class: 'fact' }, h('span', { class: 'kpi-label', text: label }), h('span', { class: 'fact-value', text: value }));
}

function sectionError(errors, path, what) {
  const found = errorsAt(errors, 'user', path);
  if (!found.length) return null;
  const code = found[0].extensions?.code;
  const why =
    code === 'UNAVAILABLE'
      ? 'the vector index (Milvus) is unavailable right now'
      : code === 'FORBIDDEN'
        ? 'your key may not read them'
        : found[0].message;
  return h('p', { class: 'state error', role: 'status', text: `${what} unavailable: ${why}.` });
}

function renderUser(user, errors) {
  const likelihood = user.conversionLikelihood;
  const likelihoodError = errorsAt(errors, 'user', 'conversionLikelihood').length > 0;
  $('user-profile').replaceChildren(
    h('div', { class: 'avatar', 'aria-hidden': 'true', text: `#${user.id}` }),
    fact('Device', (user.device || '–').toLowerCase()),
    fact('Sex', (user.sex || '–').toLowerCase()),
    fact('First visit', user.date || '–'),
    fact('Sessions', fmt.int.format(user.sessions?.length || 0)),
    fact('Converted', user.converted ? 'yes' : 'no'),
    fact('Conversion likelihood', likelihoodError ? 'unavailable' : likelihood == null ? '–' : fmt.pct(likelihood)),
  );

  // furthest step of the default funnel
  const journey = user.journey;
  const reached = journey && journey.furthestStep ? state.defaultSteps.indexOf(journey.furthestStep) : -1;
  $('user-progress').replaceChildren(
    ...state.defaultSteps.map((name, i) =>
      h('li', { class: i <= reached ? 'reached' : '', 'aria-label': `${name}: ${i <= reached ? 'reached' : 'not reached'}` }, h('span', { text: name })),
    ),
  );

  const box = $('user-journey');
  box.replaceChildren();
  if (!journey) {
    box.append(sectionError(errors, 'journey', 'The journey') || h('p', { class: 'empty', text: 'No journey.' }));
  } else if (!journey.visits.length) {
    box.append(h('p', { class: 'empty', text: 'No page visits.' }));
  } else {
    const sessions = new Map((user.sessions || []).map((s) => [s.id, s]));
    const bySession = new Map();
    for (const v of journey.visits) {
      if (!bySession.has(v.sessionId)) bySession.set(v.sessionId, []);
      bySession.get(v.sessionId).push(v);
    }
    if (journey.converted && journey.timeToConvertSeconds != null) {
      box.append(h('p', { class: 'muted', text: `Converted ${fmt.seconds(journey.timeToConvertSeconds)} after the first step.` }));
    }
    for (const [sid, visits] of bySession) {
      const s = sessions.get(sid);
      const head = h(
        'div',
        { class: 'session-head' },
        h('strong', { text: `Session ${sid}` }),
        h('span', { class: 'muted', text: s ? ` · ${utc(s.startTime)} UTC · ${fmt.seconds(seconds(s.startTime, s.endTime))} · ${fmt.int.format(s.totalInteractions)} interactions` : '' }),
        s && s.converted ? h('span', { class: 'badge good', text: `converted ${fmt.money.format(s.conversionValue)}` }) : null,
      );
      const items = visits.map((v) =>
        h(
          'li',
          {},
          h('time', { datetime: v.timestamp, text: v.timestamp.slice(11, 19) }),
          pageChip(v.pageType),
          h('span', { class: 'muted', text: fmt.seconds(v.duration) }),
        ),
      );
      box.append(h('section', { class: 'session' }, head, h('ol', { class: 'timeline' }, ...items)));
    }
  }

  const similar = $('user-similar');
  similar.replaceChildren();
  const problem = sectionError(errors, 'similarUsers', 'Similar users');
  if (problem) {
    similar.append(problem);
  } else if (!user.similarUsers || !user.similarUsers.length) {
    similar.append(h('p', { class: 'empty', text: 'No similar users (no behaviour embedding yet).' }));
  } else {
    similar.append(
      h('p', { class: 'muted', text: likelihood == null ? '' : `${fmt.pct(likelihood)} of the 10 most similar users converted.` }),
      h(
        'table',
        { class: 'similar' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'User' }), h('th', { scope: 'col', text: 'Similarity' }), h('th', { scope: 'col', text: 'Device' }), h('th', { scope: 'col', text: 'Converted' }))),
        h(
          'tbody',
          {},
          ...user.similarUsers.map((s) => {
            const fill = h('span', { class: 'fill' });
            fill.style.width = `${Math.max(0, Math.min(1, s.score)) * 100}%`;
            return h(
              'tr',
              { 'data-user': s.userId },
              h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => lookUp(s.userId), text: `#${s.userId}` })),
              h('td', {}, h('div', { class: 'score' }, h('span', { class: 'meter', 'aria-hidden': 'true' }, fill), h('span', { class: 'num', text: s.score.toFixed(3) }))),
              h('td', { text: (s.user?.device || '–').toLowerCase() }),
              h('td', { text: s.user?.converted ? 'yes' : 'no' }),
            );
          }),
        ),
      ),
    );
  }

  const sessions = user.sessions || [];
  if (sessions.length) {
    $('user-profile').append(
      h(
        'details',
        { class: 'table-details sessions' },
        h('summary', { text: sessions.length === 1 ? 'The session' : `All ${sessions.length} sessions` }),
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            {},
            h('thead', {}, h('tr', {}, ...['Session', 'Start (UTC)', 'Length', 'Pages', 'Interactions', 'Converted'].map((t) => h('th', { scope: 'col', text: t })))),
            h(
              'tbody',
              {},
              ...sessions.map((s) =>
                h(
                  'tr',
                  {},
                  h('th', { scope: 'row', text: s.id }),
                  h('td', { text: utc(s.startTime) }),
                  h('td', { class: 'num', text: fmt.seconds(seconds(s.startTime, s.endTime)) }),
                  h('td', {}, ...s.pagesVisited.map(pageChip)),
                  h('td', { class: 'num', text: fmt.int.format(s.totalInteractions) }),
                  h('td', { text: s.converted ? fmt.money.format(s.conversionValue) : 'no' }),
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }
}

// ---- wiring ----------------------------------------------------------------------------------------

function wire() {
  const form = $('filters');
  form.addEventListener('change', filtersChanged);
  form.addEventListener('submit', (event) => event.preventDefault());
  form.addEventListener('reset', () => setTimeout(filtersChanged, 0));
  $('step-add').addEventListener('change', (event) => {
    const name = event.target.value;
    if (name) setSteps([...shownSteps(), name]);
  });
  $('step-reset').addEventListener('click', () => setSteps([...state.defaultSteps]));
  for (const button of document.querySelectorAll('#trend-panel [data-interval]')) {
    button.addEventListener('click', () => {
      state.interval = button.dataset.interval;
      for (const b of document.querySelectorAll('#trend-panel [data-interval]')) {
        b.setAttribute('aria-checked', String(b === button));
      }
      loadTrend();
    });
  }
  $('user-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const id = Number($('user-id').value);
    if (Number.isInteger(id) && id > 0) lookUp(id);
  });
}

async function main() {
  wire();
  readFilters();
  // The first query settles the API key (if the gateway wants one) before the others run.
  await loadHealth();
  await Promise.all([loadPageTypes(), loadFunnel(), loadTrend(), loadTotals()]);
  startLive();
  setInterval(loadHealth, 30000);
  document.body.dataset.ready = 'true';
}

main();
