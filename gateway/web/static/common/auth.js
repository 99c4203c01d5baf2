// The API key of this browser tab. Asked once, when the gateway answers 401, and kept in sessionStorage
// (gone when the tab closes). It goes out as `Authorization: Bearer <key>` on HTTP and in the
// graphql-transport-ws connection_init payload. With authentication off the gateway never answers 401,
// so nothing is ever asked. Shared by the dashboard and GraphiQL (same origin, same key).

const STORAGE_KEY = 'funnelgate.apiKey';

// A credential is ASCII text (README, "Access"); fetch() cannot even put another character in a header
// (it throws, which read as "the gateway cannot be reached"). The first character that is not, or null.
function notAscii(key) {
  const found = /[^\x20-\x7e]/u.exec(key);
  return found ? found[0] : null;
}

export function apiKey() {
  try {
    const key = window.sessionStorage.getItem(STORAGE_KEY) || '';
    return notAscii(key) ? '' : key;
  } catch {
    return '';
  }
}

function storeKey(key) {
  try {
    if (key) window.sessionStorage.setItem(STORAGE_KEY, key);
    else window.sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    /* storage disabled: the key lives as long as the page */
  }
  memoryKey = key;
}

let memoryKey = '';

export function authHeaders() {
  const key = apiKey() || memoryKey;
  return key ? { Authorization: `Bearer ${key}` } : {};
}

let pending = null;
// Cancelled once: not asked again on this page (each dashboard panel's 401 says to reload to enter a
// key) until the person asks for something themselves: GraphiQL's Run calls askAgain().
let declined = false;

export function askAgain() {
  declined = false;
}

// Ask for a key in a modal dialog; resolves to the key, or '' when the person cancels. One dialog at a
// time: concurrent callers share it.
export function askKey(reason) {
  if (pending) return pending;
  if (declined) return Promise.resolve('');
  pending = new Promise((resolve) => {
    const dialog = document.createElement('dialog');
    dialog.className = 'key-dialog';
    dialog.setAttribute('aria-labelledby', 'key-dialog-title');
    const form = document.createElement('form');
    form.method = 'dialog';
    const title = document.createElement('h2');
    title.id = 'key-dialog-title';
    title.textContent = 'API key needed';
    const text = document.createElement('p');
    text.textContent =
      'This gateway asks for a key. It is kept for this browser tab only and sent with each request.';
    const why = document.createElement('p');
    why.className = 'key-dialog-reason';
    why.id = 'key-dialog-reason';
    why.setAttribute('role', 'alert');
    why.textContent = reason || '';
    const label = document.createElement('label');
    label.textContent = 'API key or token';
    const input = document.createElement('input');
    input.type = 'password';
    input.name = 'key';
    input.autocomplete = 'off';
    input.required = true;
    input.spellcheck = false;
    input.setAttribute('aria-describedby', 'key-dialog-reason');
    label.append(input);
    const buttons = document.createElement('div');
    buttons.className = 'key-dialog-buttons';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.textContent = 'Cancel';
    const ok = document.createElement('button');
    ok.type = 'submit';
    ok.className = 'primary';
    ok.textContent = 'Use this key';
    buttons.append(cancel, ok);
    form.append(title, text, why, label, buttons);
    dialog.append(form);
    document.body.append(dialog);

    const finish = (key) => {
      dialog.close();
      dialog.remove();
      pending = null;
      if (key) storeKey(key);
      else declined = true;
      resolve(key);
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) {
        // Spaces only: not a key, and not a Cancel either (that would stop asking for the page).
        why.textContent = 'Enter a key, or Cancel.';
        input.focus();
        return;
      }
      const bad = notAscii(key);
      if (bad) {
        why.textContent = `No key holds “${bad}”: an API key or token is ASCII text. Check for a character typed with an accent or pasted from elsewhere.`;
        input.focus();
        return;
      }
      finish(key);
    });
    cancel.addEventListener('click', () => finish(''));
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      finish('');
    });
    dialog.showModal();
    input.focus();
  });
  return pending;
}

export function forgetKey() {
  storeKey('');
}

async function reasonOf(response) {
  try {
    const body = await response.clone().json();
    return body.errors?.[0]?.message || '';
  } catch {
    return '';
  }
}

// fetch() with the key; on 401 the key is asked for (again, if the stored one was refused) and the
// request retried. A cancelled prompt returns the 401 response as it came.
export async function authFetch(url, init = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = new Headers(init.headers || {});
    const own = authHeaders();
    if (own.Authorization && !headers.has('Authorization')) headers.set('Authorization', own.Authorization);
    const response = await fetch(url, { ...init, headers });
    if (response.status !== 401 || attempt >= 3 || (init.headers && new Headers(init.headers).has('Authorization'))) {
      return response;
    }
    if (apiKey()) forgetKey();
    const key = await askKey(await reasonOf(response));
    if (!key) return response;
  }
}
