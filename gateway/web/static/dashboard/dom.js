// Small DOM helpers the dashboard's panels share: element builder, panel states, stale-answer guard.
import { ApiError } from './api.js';
import { fmt } from './charts.js';

export const $ = (id) => document.getElementById(id);

export function h(tag, attrs = {}, ...children) {
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

// A panel's request in flight: a newer one makes the older answer stale (dropped).
export function latest() {
  let counter = 0;
  return () => {
    const mine = ++counter;
    return () => mine === counter;
  };
}

export function showState(node, message, kind = '', retry = null) {
  node.replaceChildren();
  node.className = `state ${kind}`.trim();
  node.hidden = !message;
  if (!message) return;
  node.append(h('span', { text: message }));
  if (retry) node.append(h('button', { type: 'button', class: 'link', onclick: retry, text: 'Try again' }));
}

export function describe(error) {
  if (error instanceof ApiError) {
    const code = error.errors?.[0]?.extensions?.code;
    return code ? `${error.message} (${code})` : error.message;
  }
  return String(error?.message || error);
}

export function busy(panel, on) {
  panel.setAttribute('aria-busy', on ? 'true' : 'false');
  panel.classList.toggle('is-loading', on);
}

// A shortened amount ($3.0B, fmt.moneyFit) says its exact value in a tooltip; one shown to the cent has none.
export function exactMoney(node, amount) {
  const exact = fmt.money.format(amount);
  if (fmt.moneyFit(amount) === exact) node.removeAttribute('title');
  else node.title = `${exact} exactly`;
}

// A radio group (WAI-ARIA) of buttons with aria-checked: one tab stop, the checked button; a click or the
// arrow keys move the choice, as between the radio buttons of a form, and call onChoose(button).
export function radioGroup(buttons, onChoose) {
  const choose = (button) => {
    for (const b of buttons) {
      b.setAttribute('aria-checked', String(b === button));
      b.tabIndex = b === button ? 0 : -1;
    }
    onChoose(button);
  };
  buttons.forEach((button, i) => {
    button.tabIndex = button.getAttribute('aria-checked') === 'true' ? 0 : -1;
    button.addEventListener('click', () => choose(button));
    button.addEventListener('keydown', (event) => {
      const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
      if (!step) return;
      event.preventDefault();
      const next = buttons[(i + step + buttons.length) % buttons.length];
      next.focus();
      choose(next);
    });
  });
}
