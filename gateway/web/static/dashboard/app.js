// The funnel dashboard: every number comes from the gateway's public GraphQL API (api.js).
import { queryField, refusedForKey } from './api.js';
import { clearChart, fmt, funnelChart, responsive, trendChart } from './charts.js';
import { $, busy, describe, h, latest, radioGroup, showState } from './dom.js';
import { loadHealth } from './health.js';
import { startLive } from './live.js';
import { clearTotals, loadTotals } from './totals.js';
import { refusedInput, trendPoints } from './trend.js';
import { lookUp, useFunnelSteps } from './user.js';

// ---- queries ---------------------------------------------------------------------------------------

const DEFINITION_VARS = '$steps: [String!], $filter: FunnelFilter, $order: StepOrder!, $window: Int';
const DEFINITION_ARGS = 'steps: $steps, filter: $filter, order: $order, conversionWindowSeconds: $window';

const FUNNEL = `query DashboardFunnel(${DEFINITION_VARS}) {
  funnel(${DEFINITION_ARGS}) {
    overallConversionRate
    steps { name users conversionRate dropOffRate conversionFromStart avgTimeSpent medianTimeToConvert }
  }
}`;

const PAGE_TYPES = 'query DashboardPageTypes { pageTypes }';

// ---- state -----------------------------------------------------------------------------------------

const state = {
  filters: { device: '', sex: '', start: '', end: '', order: 'ORDERED', window: '' },
  steps: null, // null: the dataset's default funnel
  defaultSteps: [],
  pageTypes: [],
  pageTypesError: '', // said under the picker (the steps can still be removed and reordered)
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


// ---- funnel ----------------------------------------------------------------------------------------

const funnelTurn = latest();

// The gateway derives the default funnel from stored page views when none was ingested, so this error
// means no page view at all: users and sessions (the totals) may still exist, from other events.
const NO_PAGE_VIEWS = 'No page views yet: ingest a dataset (make demo-data) or post page_view events to /events.';
const noPageViews = (error) => /no default funnel/i.test(error.message);
// A 401 once the key dialog was cancelled: trying again asks nobody and fails the same way, so no
// "Try again" button; the message says to reload the page to enter a key.
const needsKey = (error) => error.status === 401;
// Nor for a refusal of the input (BAD_USER_INPUT): the same request is refused the same way.
const final = (error) => needsKey(error) || refusedInput(error);

async function loadFunnel({ quiet = false } = {}) {
  const current = funnelTurn();
  const panel = $('funnel-panel');
  if (!quiet) busy(panel, true);
  try {
    const funnel = await queryField('funnel', FUNNEL, definition());
    if (!current()) return;
    renderFunnel(funnel);
    showState($('funnel-state'), '');
  } catch (error) {
    if (!current()) return;
    clearChart($('funnel-chart'));
    $('funnel-table').tBodies[0].replaceChildren();
    $('funnel-overall').textContent = '–';
    const noData = noPageViews(error);
    const message = noData ? NO_PAGE_VIEWS : `The funnel could not be loaded: ${describe(error)}`;
    showState($('funnel-state'), message, noData ? 'empty' : 'error', noData || final(error) ? null : loadFunnel);
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
    clearChart(box, h('p', { class: 'empty', text: 'Nobody reached the first step with these filters.' }));
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
  refreshFunnels();
}

function rangeInverted() {
  const { start, end } = state.filters;
  return Boolean(start && end && start > end);
}

// Fewer than two steps, or a date range that ends before it starts, is no funnel: the panels say so
// rather than keep the last funnel's numbers beside a picker or filters they no longer match. Answers
// still on their way are dropped.
const TOO_FEW_STEPS = 'Pick at least two steps to see a funnel.';
const INVERTED_RANGE = 'The date range ends before it starts: nothing to show.';

// Why no funnel can be asked for now, or null. Every path that loads the funnel or the trend asks it
// first (the filters, the step picker, the period picker, a reconnection), so none sends a request
// the gateway can only refuse.
function funnelsBlocked() {
  if (rangeInverted()) return INVERTED_RANGE;
  if (state.steps !== null && shownSteps().length < 2) return TOO_FEW_STEPS;
  return null;
}

function clearFunnels(message) {
  funnelTurn();
  trendTurn();
  busy($('funnel-panel'), false);
  busy($('trend-panel'), false);
  clearChart($('funnel-chart'));
  $('funnel-table').tBodies[0].replaceChildren();
  $('funnel-overall').textContent = '–';
  showState($('funnel-state'), message, 'empty');
  clearChart($('trend-chart'));
  showState($('trend-state'), message, 'empty');
}

// One line under the picker for what keeps the funnels from being drawn: a range that ends before it
// starts, or too few steps (with no page type at all, the funnel panel already says there is no data).
function renderHint() {
  const hint = $('steps-hint');
  if (rangeInverted()) hint.textContent = 'The range ends before it starts.';
  else if (state.pageTypesError) hint.textContent = state.pageTypesError;
  else if (shownSteps().length < 2 && state.pageTypes.length) hint.textContent = 'Pick at least two steps.';
  else hint.textContent = '';
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
  const none = state.pageTypes.length ? 'every page is a step' : state.pageTypesError ? 'no page types' : 'no pages yet';
  add.replaceChildren(
    h('option', { value: '', text: remaining.length ? '+ add a step' : none }),
    ...remaining.map((p) => h('option', { value: p, text: p })),
  );
  add.disabled = remaining.length === 0;
  $('step-reset').disabled = state.steps === null;
  renderHint();
}

async function loadPageTypes() {
  try {
    state.pageTypes = await queryField('pageTypes', PAGE_TYPES);
  } catch (error) {
    state.pageTypesError = `Page types unavailable: ${describe(error)}`;
  }
  renderStepPicker();
}

// ---- trend -----------------------------------------------------------------------------------------

const trendTurn = latest();

async function loadTrend({ quiet = false } = {}) {
  const current = trendTurn();
  const panel = $('trend-panel');
  if (!quiet) busy(panel, true);
  try {
    const points = await trendPoints(state.interval, definition());
    if (!current()) return;
    // A closed date range comes back as one zero point per period even when nobody started at all.
    if (!points.some((p) => p.steps[0]?.users)) {
      clearChart($('trend-chart'));
      showState($('trend-state'), 'No user started this funnel in the range.', 'empty');
    } else {
      showState($('trend-state'), '');
      responsive($('trend-chart'), (width) => trendChart(points, state.interval, width));
    }
  } catch (error) {
    if (!current()) return;
    clearChart($('trend-chart'));
    if (noPageViews(error)) showState($('trend-state'), NO_PAGE_VIEWS, 'empty');
    else showState($('trend-state'), `The trend could not be loaded: ${describe(error)}`, 'error', final(error) ? null : loadTrend);
  } finally {
    if (current()) busy(panel, false);
  }
}

function refreshFunnels() {
  const blocked = funnelsBlocked();
  if (blocked) {
    clearFunnels(blocked);
    return;
  }
  loadFunnel();
  loadTrend();
}

// ---- filters ---------------------------------------------------------------------------------------

function readFilters() {
  const form = $('filters');
  for (const key of Object.keys(state.filters)) state.filters[key] = form.elements[key].value;
  renderHint();
  return !rangeInverted();
}

let filterTimer = null;
function filtersChanged() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    if (!readFilters()) {
      clearTotals(INVERTED_RANGE);
      clearFunnels(INVERTED_RANGE);
      return;
    }
    loadTotals(state.filters);
    refreshFunnels();
  }, 120);
}

// ---- the gateway going away and coming back --------------------------------------------------------
// The live socket is the page's one continuous link: when it drops, the health pill is checked at once
// (it said "all backends up" for up to 30 s with the gateway gone), and when it is back, the pill and
// every panel that failed meanwhile load again by themselves (they kept their error and a "Try again").

let socketLost = false;

function connectionChanged(status) {
  if (status === 'reconnecting') {
    if (!socketLost) loadHealth();
    socketLost = true;
  } else if (status === 'live' && socketLost) {
    socketLost = false;
    loadHealth();
    if ($('kpis').classList.contains('failed') && !rangeInverted()) loadTotals(state.filters);
    if (funnelsBlocked()) return;
    if ($('funnel-state').classList.contains('error')) loadFunnel();
    if ($('trend-state').classList.contains('error')) loadTrend();
  }
}

// The live metrics stop when Redis does (and come back with it) long before the 30 s health poll: the
// header is checked again at each change, so it names the cache as down while the live panel is paused.
let metricsFlowing = null; // unknown until the first message

function metricsChanged(ok) {
  if (ok === metricsFlowing) return;
  const known = metricsFlowing !== null;
  metricsFlowing = ok;
  if (known || !ok) loadHealth();
}

// ---- keeping up with live events -------------------------------------------------------------------
// The tiles, the funnel and the trend are queries: alone they would keep the numbers of the moment they
// loaded while events come in. While the period includes today (UTC: the gateway's days) they load
// again every REFRESH_MS, without the busy veil. An unchanged answer comes from the gateway's cache
// (an event drops exactly the cached answers it changes), so a dashboard left open costs little. Not
// while the tab is hidden, the gateway is away (its return reloads what failed) or a key was refused
// (a refresh would ask for it again and again).
const REFRESH_MS = 15000;

function includesToday() {
  const today = new Date().toISOString().slice(0, 10);
  const { start, end } = state.filters;
  return (!start || start <= today) && (!end || end >= today);
}

// A tick that finds the last refresh still waiting for its answers leaves it be: a gateway slower than
// REFRESH_MS would otherwise see each refresh superseded before it showed anything, and the queries pile up.
let keepingUp = false;

async function keepUp() {
  if (keepingUp || document.hidden || socketLost || refusedForKey || rangeInverted() || !includesToday()) return;
  keepingUp = true;
  try {
    const loads = [loadTotals(state.filters, { quiet: true })];
    if (!funnelsBlocked()) loads.push(loadFunnel({ quiet: true }), loadTrend({ quiet: true }));
    await Promise.allSettled(loads);
  } finally {
    keepingUp = false;
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
  radioGroup([...document.querySelectorAll('#trend-panel [data-interval]')], (button) => {
    state.interval = button.dataset.interval;
    const blocked = funnelsBlocked();
    if (blocked) clearFunnels(blocked);
    else loadTrend();
  });
  $('user-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const id = Number($('user-id').value);
    if (Number.isInteger(id) && id > 0 && id <= 2147483647) lookUp(id); // GraphQL Int: 32 bits
  });
}

async function main() {
  useFunnelSteps(() => state.defaultSteps);
  wire();
  readFilters();
  // The first query settles the API key (if the gateway wants one) before the others run.
  await loadHealth();
  await Promise.all([loadPageTypes(), loadFunnel(), loadTrend(), loadTotals(state.filters)]);
  startLive(connectionChanged, metricsChanged);
  setInterval(loadHealth, 30000);
  setInterval(keepUp, REFRESH_MS);
  document.body.dataset.ready = 'true';
}

main();
