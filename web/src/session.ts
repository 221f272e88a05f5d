// The person's session. The access token lives in this page's memory only;
// the refresh token is in an HttpOnly cookie no script can read
// (POST /v1/web/sessions, /v1/web/refresh, /v1/web/logout). A reload
// restores the session from the cookie.
import { signal } from '@preact/signals';
import { net, newId } from './net';

export type Me = { user_id: string; name: string; status_message: string; phone?: string; email?: string };

type WebTokens = { access_token: string; expires_in: number; user_id: string; session_id: string };

const csrf = { 'X-Superapp-CSRF': '1', 'Content-Type': 'application/json' };

class Session {
  token = '';
  userId = signal('');
  sessionId = '';
  /** null: not known yet (restoring); false: logged out; true: logged in. */
  state = signal<boolean | null>(null);
  /** The person logged out here (rather than a session that ended). */
  loggedOut = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private refreshing: Promise<boolean> | null = null;

  private use(t: WebTokens) {
    // Not a secret: it only spares a page that never logged in a refresh
    // bound to fail.
    localStorage.setItem('superapp.session', '1');
    this.loggedOut = false;
    this.token = t.access_token;
    this.sessionId = t.session_id;
    this.userId.value = t.user_id;
    this.state.value = true;
    clearTimeout(this.timer);
    // Renew a minute before the token expires.
    this.timer = setTimeout(() => void this.refresh(), Math.max(10, t.expires_in - 60) * 1000);
  }

  async login(login: string, password: string): Promise<void> {
    const r = await net.send('POST', '/v1/web/sessions', new Headers(csrf), JSON.stringify({ login, password, device: deviceName() }));
    if (!r.ok) throw await errorOf(r);
    this.use(await r.json());
  }

  /** Restores the session from the refresh cookie, if there is one. */
  async restore(): Promise<void> {
    if (!localStorage.getItem('superapp.session') || !(await this.refresh())) this.state.value = false;
  }

  /** Rotates the refresh cookie for a new access token. */
  refresh(): Promise<boolean> {
    this.refreshing ??= (async () => {
      try {
        const h = new Headers(csrf);
        h.set('Idempotency-Key', newId());
        const r = await net.send('POST', '/v1/web/refresh', h, undefined);
        if (!r.ok) {
          if (r.status === 401) this.clear();
          return false;
        }
        this.use(await r.json());
        return true;
      } catch {
        return false;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  expired() {
    this.clear();
  }

  async logout(): Promise<void> {
    this.loggedOut = true;
    const h = new Headers(csrf);
    h.set('Authorization', `Bearer ${this.token}`);
    try {
      await net.send('POST', '/v1/web/logout', h, undefined);
    } finally {
      this.clear();
      // Everything the browser kept for this person goes too.
      await clearBrowserData();
    }
  }

  private clear() {
    localStorage.removeItem('superapp.session');
    clearTimeout(this.timer);
    this.token = '';
    this.sessionId = '';
    this.userId.value = '';
    this.state.value = false;
    net.reset();
  }
}

/** How the device list names this browser: "Chrome on Android". */
export function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /SamsungBrowser/.test(ua) ? 'Samsung Internet' : /Firefox\//.test(ua) ? 'Firefox'
    : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows'
    : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

export async function errorOf(r: Response): Promise<Error & { code?: string; field?: string }> {
  try {
    const b = (await r.json()) as { error: { code: string; message: string; field?: string } };
    return Object.assign(new Error(b.error.message), { code: b.error.code, field: b.error.field });
  } catch {
    return Object.assign(new Error(`HTTP ${r.status}`), { code: 'http' });
  }
}

/** Clears what this origin stored: the outbox, cursors, preferences. */
export async function clearBrowserData() {
  localStorage.clear();
  sessionStorage.clear();
  const dbs = (await indexedDB.databases?.()) ?? [];
  await Promise.all(dbs.map((d) => d.name && new Promise((r) => {
    const q = indexedDB.deleteDatabase(d.name!);
    q.onsuccess = q.onerror = q.onblocked = () => r(null);
  })));
}

export const session = new Session();
