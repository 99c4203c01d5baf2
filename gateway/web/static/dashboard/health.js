// The header's health pill: which backend is down (`health`), or the gateway itself unreachable.
import { queryField } from './api.js';
import { $, describe, latest } from './dom.js';

const HEALTH = 'query DashboardHealth { health { status dependencies { role backend up } } }';

const ROLE_NAMES = { document_store: 'document store', vector_index: 'vector index', cache: 'cache' };

// Checks overlap (the 30 s poll, the live panel pausing or resuming, the socket coming back): the pill
// shows the last one asked, not an older one that happened to answer after it.
const healthTurn = latest();

export async function loadHealth() {
  const current = healthTurn();
  const pill = $('health');
  try {
    const health = await queryField('health', HEALTH);
    if (!current()) return;
    const down = health.dependencies.filter((d) => !d.up);
    pill.dataset.state = down.length ? 'degraded' : 'ok';
    pill.textContent = down.length
      ? `${down.map((d) => `${ROLE_NAMES[d.role] || d.role} (${d.backend})`).join(', ')} down`
      : 'all backends up';
    pill.title = health.dependencies.map((d) => `${d.role}: ${d.backend} ${d.up ? 'up' : 'down'}`).join('\n');
  } catch (error) {
    if (!current()) return;
    pill.dataset.state = 'error';
    pill.textContent = error.status === 0 ? 'gateway unreachable' : 'health unknown';
    pill.title = describe(error);
  }
}
