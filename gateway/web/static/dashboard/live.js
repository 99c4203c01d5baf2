// The live panel: realtimeMetrics every second over graphql-transport-ws (api.js's LiveClient).
import { LiveClient } from './api.js';
import { fmt, responsive, sparkline } from './charts.js';
import { $, describe, exactMoney, h } from './dom.js';

const LIVE = `subscription DashboardLive {
  realtimeMetrics(intervalSeconds: 1) {
    at activeUsers eventsPerMinute conversionsPerMinute revenuePerMinute
    byDevice { device revenuePerMinute }
    steps { name usersToday }
  }
}`;

const history = [];
const DEVICE_NAMES = { DESKTOP: 'Desktop', MOBILE: 'Mobile', TABLET: 'Tablet', OTHER: 'Other' };
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

// byDevice lists only the devices seen in the last minute or two (events or revenue), so an empty
// list means nobody, not an unknown.
function renderDevices(devices) {
  const top = Math.max(0, ...devices.map((d) => d.revenuePerMinute));
  const list = $('live-devices');
  if (!devices.length) {
    list.replaceChildren(h('li', { class: 'empty', text: 'Nobody in the last minute.' }));
    return;
  }
  list.replaceChildren(
    ...devices.map((d) => {
      const name = DEVICE_NAMES[d.device] || (d.device ? d.device : 'No device');
      const fill = h('span', { class: 'fill' });
      fill.style.width = top > 0 ? `${(100 * d.revenuePerMinute) / top}%` : '0%';
      const value = h('span', { class: 'live-step-value', text: fmt.moneyFit(d.revenuePerMinute) });
      exactMoney(value, d.revenuePerMinute);
      return h(
        'li',
        { 'data-device': d.device || 'none' },
        h('span', { class: 'live-step-name', text: name }),
        h('span', { class: 'meter', 'aria-hidden': 'true' }, fill),
        value,
      );
    }),
  );
}

function renderLive(metrics) {
  setNumber($('live-active'), fmt.int.format(metrics.activeUsers));
  setNumber($('live-epm'), fmt.dec.format(metrics.eventsPerMinute));
  setNumber($('live-cpm'), fmt.dec.format(metrics.conversionsPerMinute));
  setNumber($('live-rpm'), fmt.moneyFit(metrics.revenuePerMinute));
  exactMoney($('live-rpm'), metrics.revenuePerMinute);
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
  renderDevices(metrics.byDevice);
  // In UTC, as the journeys and the gateway's days are (the browser's zone would go unsaid).
  $('live-at').textContent = `Updated ${new Date(metrics.at).toISOString().slice(11, 19)} UTC`;
}

// onConnection(status) hears the socket's own states (connecting, live, reconnecting, unauthorized,
// idle), not the per-payload ones: the page uses them to notice the gateway going and coming back.
// onMetrics(ok) hears each message: false when it carried an error instead of metrics (Redis down), true
// when it carried metrics, so the page can check its backends as soon as that changes.
export function startLive(onConnection = () => {}, onMetrics = () => {}) {
  const client = new LiveClient((status, detail) => {
    liveStatus(status, detail);
    onConnection(status);
  });
  client.subscribe(LIVE, {}, {
    next(payload) {
      if (payload.errors?.length) {
        onMetrics(false);
        liveStatus('degraded', payload.errors[0].message);
        $('live-status').textContent = 'live metrics paused';
        $('live-at').textContent = payload.errors[0].message;
        return;
      }
      if (payload.data?.realtimeMetrics) {
        onMetrics(true);
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
