// The learner's terminal in the page: xterm.js (with the fit and web-links addons, served from
// /vendor) attached to every element marked `data-terminal`, now or after client-side navigation,
// and connected to /ws/terminal with a single-use ticket. It reconnects by itself with backoff and
// shows its state in the element's `data-state` and in the `[data-terminal-status]` next to it;
// when the session is over it fires `terminal-ended` (detail: the sentence shown).

// xterm.js puts its theme and cell sizes in <style> elements it makes itself; the page's policy
// admits only styles carrying the page's nonce, so each new <style> gets it.
const nonce = document.querySelector('script[nonce]')?.nonce ?? '';
const createElement = Document.prototype.createElement;
Document.prototype.createElement = function (tag, options) {
  const element = createElement.call(this, tag, options);
  if (String(tag).toLowerCase() === 'style') element.nonce = nonce;
  return element;
};

let vendor;
function loadVendor() {
  vendor ??= (async () => {
    const css = document.createElement('link');
    css.rel = 'stylesheet';
    css.href = '/vendor/xterm.css';
    document.head.append(css);
    for (const name of ['xterm', 'addon-fit', 'addon-web-links']) {
      await new Promise((resolve, reject) => {
        const script = document.createElement('script');
        script.src = `/vendor/${name}.js`;
        script.onload = resolve;
        script.onerror = () => reject(new Error(`${name} did not load`));
        document.head.append(script);
      });
    }
  })();
  return vendor;
}

const PING_EVERY_MS = 15_000;
const PONG_WITHIN_MS = 10_000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
// Ends the server announces; after these the terminal does not reconnect.
const FINAL = new Set(['session_ended', 'signed_out']);

const open = new Set();

class LearnerTerminal {
  constructor(element) {
    open.add(this);
    this.element = element;
    this.status = element.parentElement?.querySelector('[data-terminal-status]');
    this.attempt = 0;
    this.term = new window.Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
      fontSize: 14,
      scrollback: 5000,
      theme: { background: '#0f172a' },
    });
    this.fit = new window.FitAddon.FitAddon();
    this.term.loadAddon(this.fit);
    this.term.loadAddon(new window.WebLinksAddon.WebLinksAddon());
    this.term.open(element);
    this.fit.fit();
    // Copy and paste as in a desktop terminal: Ctrl+Shift+C copies the selection, Ctrl+Shift+V
    // is left to the browser, whose paste event xterm.js reads.
    this.term.attachCustomKeyEventHandler((event) => {
      if (event.type !== 'keydown' || !event.ctrlKey || !event.shiftKey) return true;
      if (event.code === 'KeyC') {
        navigator.clipboard?.writeText(this.term.getSelection());
        return false;
      }
      return event.code !== 'KeyV';
    });
    const encoder = new TextEncoder();
    this.term.onData((data) => this.send(encoder.encode(data)));
    this.term.onResize(({ cols, rows }) => this.send(JSON.stringify({ type: 'resize', cols, rows })));
    new ResizeObserver(() => this.fit.fit()).observe(element);
    this.connect();
  }

  show(state, message) {
    this.element.dataset.state = state;
    if (this.status) {
      this.status.dataset.state = state;
      this.status.textContent = message;
    }
    // The page around the terminal learns that the session is over.
    if (state === 'ended') this.element.dispatchEvent(new CustomEvent('terminal-ended', { bubbles: true, detail: message }));
  }

  send(data) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(data);
  }

  async connect() {
    this.show(this.attempt ? 'reconnecting' : 'connecting', this.attempt ? 'Reconnecting…' : 'Connecting…');
    let response;
    try {
      // A session still starting has no terminal yet: wait for it rather than ask for a ticket.
      const status = await fetch('/api/session/status', { credentials: 'same-origin' });
      if (status.status === 404) return this.show('ended', 'No session is running.');
      if (status.status === 401) return this.show('ended', 'Sign in to use the terminal.');
      if (status.ok && (await status.json()).status === 'provisioning') {
        this.show('connecting', 'Your session is starting…');
        return setTimeout(() => this.element.isConnected && this.connect(), 1000);
      }
      response = await fetch('/api/terminal/ticket', { method: 'POST', credentials: 'same-origin' });
    } catch {
      return this.retry();
    }
    if (response.status === 404) return this.show('ended', 'No session is running.');
    if (!response.ok) return this.retry();
    const { ticket } = await response.json();
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const { cols, rows } = this.term;
    const socket = new WebSocket(`${scheme}://${location.host}/ws/terminal?ticket=${encodeURIComponent(ticket)}&cols=${cols}&rows=${rows}`);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    let ending = null;
    socket.onopen = () => {
      this.attempt = 0;
      this.show('connected', 'Connected');
      this.term.focus();
      this.heartbeat = setInterval(() => {
        this.send(JSON.stringify({ type: 'ping' }));
        this.pongDue = setTimeout(() => socket.close(), PONG_WITHIN_MS);
      }, PING_EVERY_MS);
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== 'string') return this.term.write(new Uint8Array(event.data));
      const frame = JSON.parse(event.data);
      if (frame.type === 'pong') return clearTimeout(this.pongDue);
      ending = frame;
    };
    socket.onclose = () => {
      clearInterval(this.heartbeat);
      clearTimeout(this.pongDue);
      if (this.socket !== socket) return;
      if (ending && FINAL.has(ending.type)) return this.show('ended', ending.message);
      this.retry(ending?.message);
    };
  }

  /** Gone from the page (navigated away): the socket closes, the shell stays for next time. */
  dispose() {
    open.delete(this);
    const socket = this.socket;
    this.socket = null;
    socket?.close();
    this.term.dispose();
  }

  retry(message) {
    if (!this.element.isConnected) return;
    const wait = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.show('reconnecting', message ?? 'Connection lost; reconnecting…');
    setTimeout(() => this.element.isConnected && this.connect(), wait);
  }
}

async function attachAll() {
  [...open].filter((t) => !t.element.isConnected).forEach((t) => t.dispose());
  const fresh = [...document.querySelectorAll('[data-terminal]')].filter((e) => !e.dataset.attached);
  if (!fresh.length) return;
  fresh.forEach((e) => { e.dataset.attached = 'true'; });
  await loadVendor();
  fresh.forEach((e) => new LearnerTerminal(e));
}

new MutationObserver(attachAll).observe(document.documentElement, { childList: true, subtree: true });
attachAll();
