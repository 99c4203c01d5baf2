// The live panel: realtimeMetrics every second over graphql-transport-ws (api.js's LiveClient).
import { LiveClient } from './api.js';
import { fmt, responsive, sparkline } from './charts.js';
import { $, describe, h } from './dom.js';

const LIVE = `subscription DashboardLive {
  realtimeMetrics(intervalSeconds: 1) {
    at activeUsers eventsPerMinute conversionsPerMinute steps { name usersToday }
  }
}`;

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
        // usersToday is a HyperLogLog count (~0.8% standard error), so it is shown as an estimate.
        h('span', {
          class: 'live-step-value',
          title: 'Estimate (HyperLogLog, about 0.8% error)',
          text: `≈${fmt.int.format(s.usersToday)}`,
        }),
      );
    }),
  );
  $('live-at').textContent = `Updated ${new Date(metrics.at).toLocaleTimeString()}`;
}

export function startLive() {
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
