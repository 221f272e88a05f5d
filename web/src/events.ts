// The live event stream (GET /v1/events, a WebSocket), resumed from the
// cursor of the last frame seen after any drop, on whichever DC answers.
// The token travels as a subprotocol, never in the URL. Browsers cannot
// send WebSocket pings: the page sends {"type":"ping"} every second and
// takes a stream that stayed silent for two as a silent DC, and moves on.
import { signal } from '@preact/signals';
import type { StreamFrame } from './gen/types.gen';
import { net, sleep } from './net';
import { session } from './session';

const pingEvery = 1000;
const silentAfter = 2000;

type Handler = (f: StreamFrame) => void;

/** Where the cursor of a person's last event is kept (not a secret). */
const cursorKey = (user: string) => `superapp.cursor.${user}`;

class Events {
  /** Connected to a DC and caught up. */
  live = signal(false);
  private handlers = new Set<Handler>();
  private ws: WebSocket | null = null;
  private running = false;
  private user = '';

  on(fn: Handler): () => void {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }

  private get cursorKey() {
    return cursorKey(this.user);
  }

  /** Whether this browser streamed the person's events before. */
  hasCursor(user: string): boolean {
    return localStorage.getItem(cursorKey(user)) !== null;
  }

  get cursor(): number {
    return Number(localStorage.getItem(this.cursorKey) ?? 0);
  }

  start(user: string, cursor?: number) {
    this.user = user;
    if (cursor !== undefined) localStorage.setItem(this.cursorKey, String(cursor));
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  stop() {
    this.running = false;
    this.ws?.close();
    this.live.value = false;
  }

  private async loop() {
    let backoff = 100;
    while (this.running && session.token) {
      const ep = net.order()[0];
      const got = await this.once(ep.url);
      this.live.value = false;
      if (!this.running) return;
      if (!got) net.avoid();
      else backoff = 100;
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 2000);
    }
    this.running = false;
  }

  /** One connection; resolves when it ends, with whether it gave anything. */
  private once(base: string): Promise<boolean> {
    return new Promise((resolve) => {
      let got = false;
      let heard = performance.now();
      const url = base.replace(/^http/, 'ws') + `/v1/events?cursor=${this.cursor}`;
      let ws: WebSocket;
      try {
        ws = new WebSocket(url, ['superapp.v1', `superapp.bearer.${session.token}`]);
      } catch {
        resolve(false);
        return;
      }
      this.ws = ws;
      const opened = setTimeout(() => ws.close(), 3000); // a silent DC never answers the upgrade
      const ticker = setInterval(() => {
        if (ws.readyState !== WebSocket.OPEN) return;
        if (performance.now() - heard > silentAfter) {
          ws.close();
          finish();
          return;
        }
        ws.send('{"type":"ping"}');
      }, pingEvery);
      const finish = () => {
        clearTimeout(opened);
        clearInterval(ticker);
        ws.onmessage = ws.onclose = ws.onerror = null;
        if (this.ws === ws) this.ws = null;
        resolve(got);
      };
      ws.onopen = () => {
        clearTimeout(opened);
        heard = performance.now();
      };
      ws.onmessage = (m) => {
        heard = performance.now();
        got = true;
        let f: StreamFrame | { type: 'pong' };
        try {
          f = JSON.parse(m.data as string);
        } catch {
          return;
        }
        if (f.type === 'pong') return;
        if (f.type === 'events') {
          if (f.cursor <= this.cursor) return;
          localStorage.setItem(this.cursorKey, String(f.cursor));
        }
        if (f.type === 'sync.done') this.live.value = true;
        for (const h of this.handlers) h(f);
      };
      ws.onerror = () => ws.close();
      ws.onclose = () => finish();
    });
  }

  /** Tells the conversation's members that this person is typing. */
  typing(conversationId: string) {
    if (this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'typing', conversation_id: conversationId }));
    }
  }
}

export const events = new Events();
