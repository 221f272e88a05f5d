import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { t, type Key } from './i18n';
import { conversations } from './chat';
import { pending } from './outbox';

const tabs: { href: string; key: Key; icon: string }[] = [
  { href: '/chats', key: 'chats', icon: 'M4 5h16v10H8l-4 4z' },
  { href: '/friends', key: 'friends', icon: 'M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 9c0-4 3-6 7-6s7 2 7 6zm15-9a3 3 0 1 0 0-6m2 15c0-3-1-5-4-6' },
  { href: '/wallet', key: 'wallet', icon: 'M3 7h18v12H3zM3 7l3-4h12l3 4M16 13h2' },
  { href: '/pay', key: 'pay', icon: 'M4 4h6v6H4zM14 4h6v6h-6zM4 14h6v6H4zM14 14h2v2h-2zM18 18h2v2h-2z' },
  { href: '/settings', key: 'settings', icon: 'M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM4 12h2M18 12h2M12 4v2M12 18v2' },
];

export function Icon({ d }: { d: string }) {
  return (
    <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">
      <path d={d} />
    </svg>
  );
}

export function Nav() {
  const { path } = useLocation();
  const unread = conversations.value.reduce((n, c) => n + c.unread, 0);
  return (
    <nav class="nav" aria-label="Main">
      <span class="brand" aria-hidden="true">superapp</span>
      {tabs.map((tab) => {
        const on = path === tab.href || path.startsWith(tab.href + '/') || (tab.href === '/chats' && path === '/');
        return (
          <a href={tab.href} class={on ? 'tab on' : 'tab'} aria-current={on ? 'page' : undefined}>
            <Icon d={tab.icon} />
            <span>{t(tab.key)}</span>
            {tab.href === '/chats' && unread > 0 && <span class="badge" aria-label={`${unread} unread`}>{unread > 99 ? '99+' : unread}</span>}
          </a>
        );
      })}
      {pending.value.length > 0 && <span class="sr-only" role="status">{t('pending')}</span>}
    </nav>
  );
}

export function Avatar({ name, size = 40 }: { name: string; size?: number }) {
  const letter = (name.trim()[0] ?? '?').toUpperCase();
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return (
    <span class={`avatar hue-${h % 12}`} data-size={size} aria-hidden="true">
      {letter}
    </span>
  );
}

export function Page({ title, children, back, actions }: { title: string; children: ComponentChildren; back?: string; actions?: ComponentChildren }) {
  return (
    <section class="page">
      <header class="bar">
        {back && (
          <a class="iconbtn" href={back} aria-label={t('back')}>
            <Icon d="M15 5l-7 7 7 7" />
          </a>
        )}
        <h1>{title}</h1>
        <div class="actions">{actions}</div>
      </header>
      <div class="content">{children}</div>
    </section>
  );
}

/**
 * An action a person starts: busy while it runs, and the error it ended
 * with, in words (word; the API's message by default). With leaving, the
 * action ends by navigating away and stays busy once it succeeded, so
 * that nothing is pressed twice on the way out.
 */
export function useAction(word: (err: unknown) => string = (err) => (err as Error).message) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const run = async (fn: () => Promise<unknown>, opts: { leaving?: boolean; onError?: (err: unknown) => void } = {}) => {
    setBusy(true);
    setError('');
    try {
      await fn();
      if (!opts.leaving) setBusy(false);
    } catch (err) {
      opts.onError?.(err);
      setError(word(err));
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

export function ErrorText({ error }: { error: string }) {
  return error ? <p class="error" role="alert">{error}</p> : null;
}
