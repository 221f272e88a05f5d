// The web app's transport: the Go client's failover strategy (see the
// client package's doc, "Failover strategy"), in the browser.
//
// - The app learns every DC's endpoint from GET /v1/endpoints and prefers
//   the one that answered last.
// - A request unanswered after a short, latency-aware delay (3 × the
//   endpoint's smoothed latency + 100 ms, within 250 ms – 1 s) is sent again,
//   to the next DC, with the same Idempotency-Key: the first final answer
//   wins and the others are aborted. A network error or a 502/503/504 moves
//   on at once. Every write carries an Idempotency-Key (made here when the
//   caller gave none), so a write sent twice happens once.
// - Writes answer their position (X-Superapp-Position); later requests send
//   the positions seen, so a read on another DC waits for what this page
//   wrote (read-your-writes across DCs).

export type Endpoint = { dc: string; url: string };

const hedgeMin = 250;
const hedgeMax = 1000;
const attemptTimeout = 10_000;
const deadline = 30_000;

type Listener = (dc: string | null, moved: boolean) => void;

class Net {
  private endpoints: Endpoint[] = [{ dc: '', url: location.origin }];
  private preferred = 0;
  private ewma = new Map<string, number>();
  private positions = new Map<string, number>();
  private listeners = new Set<Listener>();
  private learned: Promise<void> | null = null;

  /** The DC serving the page now ('' until known). */
  get dc(): string {
    return this.endpoints[this.preferred]?.dc ?? '';
  }

  get base(): string {
    return this.endpoints[this.preferred]?.url ?? location.origin;
  }

  onMove(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Learns every DC's endpoint; the page's own origin stays first. */
  learn(): Promise<void> {
    this.learned ??= (async () => {
      try {
        const r = await this.send('GET', '/v1/endpoints', new Headers(), undefined);
        if (!r.ok) return;
        const body = (await r.json()) as { endpoints: Endpoint[] };
        const own = body.endpoints.find((e) => sameOrigin(e.url, location.origin));
        const others = body.endpoints.filter((e) => e !== own);
        this.endpoints = [own ?? { dc: '', url: location.origin }, ...others];
        this.preferred = 0;
        this.emit(false);
      } catch {
        this.learned = null; // try again on the next call
      }
    })();
    return this.learned;
  }

  /** The fetch the generated API client calls. */
  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const req = new Request(input, init);
    const u = new URL(req.url);
    const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await req.arrayBuffer();
    return this.send(req.method, u.pathname + u.search, new Headers(req.headers), body);
  };

  /** Sends one request with failover and hedging. */
  async send(method: string, path: string, headers: Headers, body: BodyInit | undefined): Promise<Response> {
    if (method !== 'GET' && method !== 'HEAD' && !headers.has('Idempotency-Key')) {
      headers.set('Idempotency-Key', newId());
    }
    const pos = this.positionHeader();
    if (pos && !headers.has('X-Superapp-Position')) headers.set('X-Superapp-Position', pos);
    const started = performance.now();
    let round = 0;
    for (;;) {
      const r = await this.hedged(method, path, headers, body);
      if (r.final || performance.now() - started > deadline) {
        if (r.response) return r.response;
        throw r.error ?? new Error('no DC answered');
      }
      // Every DC refused for now (a stream electing its new leader after
      // a fire answers 503 for about a second): ask again soon, then
      // less often.
      round++;
      await sleep(performance.now() - started < 3000 ? 100 : Math.min(250 * 2 ** (round / 4), 2000));
    }
  }

  private async hedged(method: string, path: string, headers: Headers, body: BodyInit | undefined) {
    const n = this.endpoints.length;
    const first = this.preferred;
    // One controller per attempt: the winner's body must stay readable
    // while the others are aborted.
    const ctls: AbortController[] = [];
    type Result = { final: boolean; response?: Response; error?: unknown; index: number };
    return new Promise<Result>((resolve) => {
      let pending = 0;
      let launched = 0;
      let done = false;
      let last: Result = { final: false, index: first };
      let timer: ReturnType<typeof setTimeout> | undefined;
      const launch = () => {
        if (done || launched >= n) return;
        const index = (first + launched) % n;
        launched++;
        pending++;
        const ep = this.endpoints[index];
        clearTimeout(timer);
        if (launched < n) timer = setTimeout(launch, this.hedgeDelay(ep.url));
        const t0 = performance.now();
        const ctl = new AbortController();
        ctls.push(ctl);
        const attempt = AbortSignal.any([ctl.signal, AbortSignal.timeout(attemptTimeout)]);
        fetch(ep.url + path, { method, headers, body, signal: attempt, credentials: 'include', mode: 'cors' })
          .then((response) => {
            pending--;
            if (done) return;
            this.observe(ep.url, performance.now() - t0);
            const retry = response.status === 502 || response.status === 503 || response.status === 504;
            if (!retry) {
              done = true;
              clearTimeout(timer);
              this.prefer(index);
              this.notePosition(response);
              for (const c of ctls) if (c !== ctl) c.abort();
              resolve({ final: true, response, index });
              return;
            }
            last = { final: false, response, index };
            // Another DC not yet asked is asked now, without waiting
            // for the hedge: the one still pending may be silent.
            if (launched < n) launch();
            else if (pending === 0) finish();
          })
          .catch((error) => {
            pending--;
            if (done) return;
            last = { final: false, error, index };
            if (launched < n) launch();
            else if (pending === 0) finish();
          });
      };
      const finish = () => {
        done = true;
        clearTimeout(timer);
        resolve(last);
      };
      launch();
    });
  }

  private hedgeDelay(url: string): number {
    const e = this.ewma.get(url);
    if (e === undefined) return hedgeMax;
    return Math.max(hedgeMin, Math.min(hedgeMax, 3 * e + 100));
  }

  private observe(url: string, ms: number) {
    // An answer that waited out a leader election counts as a third of
    // the longest hedge delay: one such wait must not stop the next
    // requests from hedging for a second.
    ms = Math.min(ms, hedgeMax / 3);
    const e = this.ewma.get(url);
    this.ewma.set(url, e === undefined ? ms : 0.8 * e + 0.2 * ms);
  }

  private prefer(index: number) {
    if (index === this.preferred) return;
    this.preferred = index;
    this.emit(true);
  }

  /** Moves away from the preferred DC (its event stream went silent). */
  avoid() {
    if (this.endpoints.length > 1) {
      this.preferred = (this.preferred + 1) % this.endpoints.length;
      this.emit(true);
    }
  }

  private emit(moved: boolean) {
    for (const fn of this.listeners) fn(this.dc || null, moved);
  }

  private notePosition(r: Response) {
    const h = r.headers.get('X-Superapp-Position');
    if (!h) return;
    for (const part of h.split(',')) {
      const [stream, seq] = part.trim().split(':');
      const n = Number(seq);
      if (stream && Number.isFinite(n)) this.positions.set(stream, Math.max(this.positions.get(stream) ?? 0, n));
    }
  }

  private positionHeader(): string {
    return [...this.positions].map(([s, n]) => `${s}:${n}`).join(',');
  }

  /** Forgets what this page wrote (logout). */
  reset() {
    this.positions.clear();
  }

  /** Every endpoint, the preferred first: where the event stream goes. */
  order(): Endpoint[] {
    const n = this.endpoints.length;
    return Array.from({ length: n }, (_, i) => this.endpoints[(this.preferred + i) % n]);
  }
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

export function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

/** A client-chosen id: idempotency keys, message ids. */
export function newId(): string {
  return crypto.randomUUID();
}

export const net = new Net();
