// The user lookup: profile, progress along the default funnel, the journey per session, every session,
// look-alikes with their scores, and the conversion likelihood. A field the gateway refuses or cannot
// answer (FORBIDDEN, Milvus UNAVAILABLE) empties its own section; the rest still shows.
// The API pages its lists (sessions answer 10 without `first`): the panel asks the first PAGE sessions
// and sessionCount, and of each session the CHIPS pages the table names and visitCount, which counts
// the rest (a page of 1,000 pages under 1,000 sessions would cost a million, five times the default
// budget).
import { errorsAt, query } from './api.js';
import { fmt } from './charts.js';
import { $, busy, describe, h, latest, showState } from './dom.js';

// A list page: 1,000, or less when the gateway pages less (FUNNEL_MAX_PAGE_SIZE, which the page it
// serves names): a larger `first` is refused, and the whole lookup with it.
export function pageSize(meta = document.querySelector('meta[name="funnelgate-max-page-size"]')) {
  const max = Number.parseInt(meta?.content ?? '', 10);
  return Number.isInteger(max) && max >= 1 ? Math.min(1000, max) : 1000;
}

const PAGE = pageSize();
const CHIPS = Math.min(40, PAGE); // pages named per session in the sessions table: USER's pagesVisited
const SIMILAR = Math.min(8, PAGE);

const USER = `query DashboardUser($id: Int!, $page: Int!, $chips: Int!, $similar: Int!) {
  user(id: $id) {
    id device sex date converted
    sessionCount
    sessions(first: $page) { id startTime endTime device visitCount pagesVisited(first: $chips) totalInteractions converted conversionValue }
    journey { furthestStep converted timeToConvertSeconds visitCount visits(first: $page) { pageType timestamp duration sessionId } }
    similarUsers(limit: $similar) { userId score user { device converted } }
    conversionLikelihood
  }
}`;

let funnelSteps = () => [];

// The dashboard's default funnel, read when a user is shown (it arrives with the first funnel).
export function useFunnelSteps(steps) {
  funnelSteps = steps;
}

const userTurn = latest();

function utc(iso) {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : '–';
}

function seconds(a, b) {
  return (new Date(b) - new Date(a)) / 1000;
}

function pageChip(name) {
  const index = funnelSteps().indexOf(name);
  return h('span', { class: `page-chip${index >= 0 ? ` step-${Math.min(index, 5)}` : ''}`, text: name });
}

const FINAL_CODES = ['FORBIDDEN', 'UNAUTHENTICATED', 'BAD_USER_INPUT'];

export async function lookUp(id) {
  const current = userTurn();
  const panel = $('user-panel');
  $('user-id').value = String(id);
  busy(panel, true);
  showState($('user-state'), `Looking up user ${id}…`);
  try {
    const { data, errors } = await query(USER, { id, page: PAGE, chips: CHIPS, similar: SIMILAR });
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
    // Trying again cannot change a refusal of the role or of the input: no button for those.
    const code = error?.errors?.[0]?.extensions?.code;
    const retry = FINAL_CODES.includes(code) ? null : () => lookUp(id);
    showState($('user-state'), `User ${id} could not be loaded: ${describe(error)}`, 'error', retry);
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

// The API answers 1.0 for a user who has converted: a fact, not a prediction from look-alikes, so
// the panel says so rather than "100.0% likely".
function likelihoodText(user) {
  if (user.converted) return 'converted already';
  return user.conversionLikelihood == null ? '–' : fmt.pct(user.conversionLikelihood);
}

function likelihoodNote(user) {
  if (user.converted) return 'Converted already, so there is no likelihood to predict.';
  if (user.conversionLikelihood == null) return '';
  return `${fmt.pct(user.conversionLikelihood)} likely to convert, from the outcomes of the 50 most similar users (weighted by similarity).`;
}

// A journey is drawn JOURNEY_ROWS visits at a time: a user with 5,000 page views made a panel 144,000 px
// tall that took seconds to draw. What is left out is counted, with a control for more and for all.
// The query loads the first PAGE visits (the API pages visit lists), and visitCount says how many there
// are in all.
const JOURNEY_ROWS = 200;

function drawJourney(box, user, errors, limit) {
  const journey = user.journey;
  box.replaceChildren();
  if (!journey) {
    box.append(sectionError(errors, 'journey', 'The journey') || h('p', { class: 'empty', text: 'No journey.' }));
    return;
  }
  if (!journey.visits.length) {
    box.append(h('p', { class: 'empty', text: 'No page visits.' }));
    return;
  }
  const sessions = new Map((user.sessions || []).map((s) => [s.id, s]));
  const bySession = new Map();
  const loaded = journey.visits.length;
  const total = Math.max(journey.visitCount ?? loaded, loaded);
  for (const v of journey.visits.slice(0, limit)) {
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
  const shown = Math.min(limit, loaded);
  if (shown < total) {
    const more = Math.min(JOURNEY_ROWS, loaded - shown);
    const controls = shown < loaded
      ? [
          h('button', { type: 'button', class: 'link', onclick: () => drawJourney(box, user, errors, shown + more), text: `Show ${fmt.int.format(more)} more` }),
          ' · ',
          h('button', { type: 'button', class: 'link', onclick: () => drawJourney(box, user, errors, loaded), text: loaded < total ? `Show the first ${fmt.int.format(loaded)}` : `Show all ${fmt.int.format(total)}` }),
        ]
      : [h('span', { text: `The panel loads the first ${fmt.int.format(loaded)}; GraphiQL answers the latest: journey { visits(last: 100) { … } }.` })];
    box.append(
      h(
        'p',
        { class: 'journey-more muted' },
        h('span', { text: `The first ${fmt.int.format(shown)} of ${fmt.int.format(total)} visits; ${fmt.int.format(total - shown)} hidden. ` }),
        ...controls,
      ),
    );
  }
}

function sessionsSummary(loaded, total) {
  if (loaded < total) return `The first ${fmt.int.format(loaded)} of ${fmt.int.format(total)} sessions`;
  return loaded === 1 ? 'The session' : `All ${fmt.int.format(loaded)} sessions`;
}

// The session's pages past the chips, counted by visitCount (the query loads CHIPS of them).
function morePages(s) {
  const named = Math.min(CHIPS, s.pagesVisited.length);
  const rest = Math.max(s.visitCount ?? s.pagesVisited.length, s.pagesVisited.length) - named;
  return rest > 0 ? h('span', { class: 'muted', text: ` +${fmt.int.format(rest)} more` }) : null;
}

function renderUser(user, errors) {
  const likelihoodError = errorsAt(errors, 'user', 'conversionLikelihood').length > 0;
  $('user-profile').replaceChildren(
    h('div', { class: 'avatar', 'aria-hidden': 'true', text: `#${user.id}` }),
    fact('Device', (user.device || '–').toLowerCase()),
    fact('Sex', (user.sex || '–').toLowerCase()),
    fact('First visit', user.date || '–'),
    fact('Sessions', fmt.int.format(user.sessionCount ?? user.sessions?.length ?? 0)),
    fact('Converted', user.converted ? 'yes' : 'no'),
    fact('Conversion likelihood', likelihoodError ? 'unavailable' : likelihoodText(user)),
  );

  // furthest step of the default funnel
  const journey = user.journey;
  const reached = journey && journey.furthestStep ? funnelSteps().indexOf(journey.furthestStep) : -1;
  $('user-progress').replaceChildren(
    ...funnelSteps().map((name, i) =>
      h('li', { class: i <= reached ? 'reached' : '', 'aria-label': `${name}: ${i <= reached ? 'reached' : 'not reached'}` }, h('span', { text: name })),
    ),
  );

  drawJourney($('user-journey'), user, errors, JOURNEY_ROWS);

  const similar = $('user-similar');
  similar.replaceChildren();
  const problem = sectionError(errors, 'similarUsers', 'Similar users');
  if (problem) {
    similar.append(problem);
  } else if (user.similarUsers === null) {
    similar.append(h('p', { class: 'empty', text: 'No behaviour embedding yet (run funnelgate embed).' }));
  } else if (!user.similarUsers.length) {
    similar.append(h('p', { class: 'empty', text: 'Nobody behaved alike.' }));
  } else {
    similar.append(
      h('p', { class: 'muted', text: likelihoodNote(user) }),
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
        h('summary', { text: sessionsSummary(sessions.length, user.sessionCount ?? sessions.length) }),
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
                  h('td', {}, ...s.pagesVisited.slice(0, CHIPS).map(pageChip), morePages(s)),
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
