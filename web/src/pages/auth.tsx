import { useState } from 'preact/hooks';
import { session, errorOf } from '../session';
import { net } from '../net';
import { t } from '../i18n';
import { ErrorText, useAction } from '../ui';

function loginBody(v: string) {
  return v.includes('@') ? { email: v.trim() } : { phone: v.trim() };
}

/** A form's submit: the action runs, busy and its error shown. */
function useSubmit(fn: () => Promise<void>) {
  const { busy, error, run } = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(fn);
  };
  return { busy, error, submit };
}

function AuthCard({ title, children, foot }: { title: string; children: preact.ComponentChildren; foot: preact.ComponentChildren }) {
  return (
    <section class="auth">
      <div class="card">
        <div class="logo" aria-hidden="true">
          <svg viewBox="0 0 64 64"><rect width="64" height="64" rx="16" fill="currentColor" /><path d="M18 24a14 12 0 1 1 10 19l-9 6 2-9a12 12 0 0 1-3-16z" fill="#fff" /></svg>
        </div>
        <h1>{title}</h1>
        {children}
        <p class="foot">{foot}</p>
      </div>
    </section>
  );
}

export function Login() {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, submit } = useSubmit(() => session.login(login.trim(), password));
  return (
    <AuthCard title={t('loginTitle')} foot={<>{t('noAccount')} <a href={`/signup${location.search}`}>{t('signup')}</a></>}>
      <form onSubmit={submit} class="form">
        <label>
          <span>{t('loginField')}</span>
          <input name="login" autocomplete="username" required value={login} onInput={(e) => setLogin(e.currentTarget.value)} />
        </label>
        <label>
          <span>{t('password')}</span>
          <input name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <ErrorText error={error} />
        <button class="primary" type="submit" disabled={busy}>{t('login')}</button>
      </form>
    </AuthCard>
  );
}

export function Signup() {
  const [name, setName] = useState('');
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, submit } = useSubmit(async () => {
    const r = await net.send('POST', '/v1/accounts', new Headers({ 'Content-Type': 'application/json' }),
      JSON.stringify({ name: name.trim(), password, ...loginBody(login) }));
    if (!r.ok) throw await errorOf(r);
    await session.login(login.trim(), password);
  });
  return (
    <AuthCard title={t('signupTitle')} foot={<>{t('haveAccount')} <a href={`/login${location.search}`}>{t('login')}</a></>}>
      <form onSubmit={submit} class="form">
        <label>
          <span>{t('name')}</span>
          <input name="name" autocomplete="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          <span>{t('loginField')}</span>
          <input name="login" autocomplete="username" required value={login} onInput={(e) => setLogin(e.currentTarget.value)} />
        </label>
        <label>
          <span>{t('password')}</span>
          <input name="password" type="password" autocomplete="new-password" required minLength={10} aria-describedby="pw-hint" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          <small id="pw-hint">{t('passwordHint')}</small>
        </label>
        <ErrorText error={error} />
        <button class="primary" type="submit" disabled={busy}>{t('signup')}</button>
      </form>
    </AuthCard>
  );
}
