import { useEffect } from 'preact/hooks';
import { signal } from '@preact/signals';
import { LocationProvider, Router, Route, useLocation } from 'preact-iso';
import { session } from './session';
import { net } from './net';
import { t } from './i18n';
import { startChat, stopChat, onlineAgain, names } from './chat';
import * as api from './api';
import { call } from './api';
import { Login, Signup } from './pages/auth';
import { Chats } from './pages/chats';
import { Conversation } from './pages/conversation';
import { ConversationInfo } from './pages/convinfo';
import { Friends } from './pages/friends';
import { Settings } from './pages/settings';
import { Consent } from './pages/consent';
import { Apps } from './pages/apps';
import { Wallet } from './pages/wallet';
import { Pay } from './pages/pay';
import { Nav } from './ui';

/** A short, calm notice: the page moved to another DC. */
export const notice = signal('');
let noticeTimer: ReturnType<typeof setTimeout> | undefined;

net.onMove((dc, moved) => {
  if (!moved || !dc) return;
  notice.value = t('moved', { dc });
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (notice.value = ''), 6000);
});
addEventListener('online', onlineAgain);

/** Pages a person sees without logging in. */
const publicPaths = ['/login', '/signup'];

export async function loadNames() {
  const [me, fr] = await Promise.all([call(() => api.getMe()), call(() => api.listFriends())]);
  const n: Record<string, string> = { [me.user_id]: me.name };
  for (const f of fr.friends) n[f.user_id] = f.name;
  names.value = { ...names.value, ...n };
}

function Shell() {
  const loc = useLocation();
  const state = session.state.value;
  const path = loc.path;
  useEffect(() => {
    if (state === false && !publicPaths.includes(path)) {
      // A deep link comes back after the log-in; a log-out starts afresh.
      const back = loc.url === '/' || session.loggedOut ? '' : `?next=${encodeURIComponent(loc.url)}`;
      loc.route(`/login${back}`, true);
    }
    if (state === true && publicPaths.includes(path)) {
      const next = new URLSearchParams(location.search).get('next');
      loc.route(next && next.startsWith('/') && !next.startsWith('//') ? next : '/chats', true);
    }
  }, [state, path]);
  useEffect(() => {
    if (state !== true) return;
    void startChat();
    void loadNames().catch(() => {});
    return () => stopChat();
  }, [state, session.userId.value]);
  if (state === null) return <div class="splash" role="status">{t('loading')}</div>;
  const authed = state === true;
  const wide = !publicPaths.includes(path) && !path.startsWith('/oauth/');
  return (
    <div class={wide ? 'layout' : 'layout bare'}>
      {notice.value && <div class="notice" role="status">{notice.value}</div>}
      {authed && wide && <Nav />}
      <main class="main">
        <Router>
          <Route path="/login" component={Login} />
          <Route path="/signup" component={Signup} />
          <Route path="/" component={Chats} />
          <Route path="/chats" component={Chats} />
          <Route path="/chats/:id" component={Conversation} />
          <Route path="/chats/:id/info" component={ConversationInfo} />
          <Route path="/friends" component={Friends} />
          <Route path="/wallet" component={Wallet} />
          <Route path="/pay" component={Pay} />
          <Route path="/apps" component={Apps} />
          <Route path="/settings" component={Settings} />
          <Route path="/oauth/consent" component={Consent} />
          <Route default component={NotFound} />
        </Router>
      </main>
    </div>
  );
}

function NotFound() {
  return (
    <section class="page">
      <h1>{t('notFoundPage')}</h1>
      <a href="/chats">{t('chats')}</a>
    </section>
  );
}

export function App() {
  useEffect(() => {
    void net.learn();
    void session.restore();
  }, []);
  return (
    <LocationProvider>
      <Shell />
    </LocationProvider>
  );
}
