import { useEffect, useState } from 'preact/hooks';
import * as api from '../api';
import { call, type AuthorizationRequest } from '../api';
import { t, type Key } from '../i18n';
import { ErrorText, useAction } from '../ui';

/**
 * "Login with superapp": a third-party app sent the person here
 * (/oauth/consent?request=ID). The page shows who asks, for what, and
 * where the answer goes; Allow and Deny complete the flow through the API
 * and send the browser back to the app. A person not logged in logs in
 * first and comes back (the shell keeps this URL as ?next=).
 */
export function Consent() {
  const id = new URLSearchParams(location.search).get('request') ?? '';
  const [req, setReq] = useState<AuthorizationRequest | null>(null);
  const { busy, error, setError, run } = useAction();
  useEffect(() => {
    if (!id) {
      setError('This link has no request.');
      return;
    }
    call(() => api.getAuthorizationRequest({ path: { request_id: id } })).then(setReq, (e) => setError(e.message));
  }, [id]);

  const decide = (allow: boolean) =>
    run(async () => {
      const fn = allow ? api.approveAuthorizationRequest : api.denyAuthorizationRequest;
      const d = await call(() => fn({ path: { request_id: id } }));
      location.assign(d.redirect_to);
    }, { leaving: true });

  if (!req) {
    return (
      <section class="auth">
        <div class="card">{error ? <ErrorText error={error} /> : <p role="status">{t('loading')}</p>}</div>
      </section>
    );
  }
  const app = req.client?.name ?? '';
  return (
    <section class="auth consent">
      <div class="card">
        <div class="app-mark" aria-hidden="true">{app.slice(0, 1).toUpperCase()}</div>
        <h1>{app}</h1>
        <p class="lead">{t('consentTitle', { app })}</p>
        {req.client?.owner_name && <p class="muted small">{t('consentBy', { owner: req.client.owner_name })}</p>}
        <ul class="scopes">
          {(req.scopes ?? []).map((s) => (
            <li key={s}>{scopeText(s)}</li>
          ))}
        </ul>
        <p class="muted small">{t('consentRedirect', { host: req.redirect_host ?? '' })}</p>
        <ErrorText error={error} />
        {req.status === 'pending' ? (
          <div class="buttons">
            <button type="button" disabled={busy} onClick={() => decide(false)}>{t('deny')}</button>
            <button class="primary" type="button" disabled={busy} onClick={() => decide(true)}>{t('allow')}</button>
          </div>
        ) : (
          <p class="notice-inline" role="status">{t(req.status === 'expired' ? 'consentExpired' : 'consentDone', { app })}</p>
        )}
      </div>
    </section>
  );
}

function scopeText(s: string): string {
  const key = `scope_${s}` as Key;
  const text = t(key);
  return text === undefined || text === key ? s : text;
}
