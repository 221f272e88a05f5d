import { useEffect, useState } from 'preact/hooks';
import * as api from '../api';
import { call, type Grant } from '../api';
import { t, formatTime } from '../i18n';
import { Page, ErrorText } from '../ui';

/** The apps a person let in with "Login with superapp", with revoke. */
export function Apps() {
  const [grants, setGrants] = useState<Grant[]>([]);
  const [error, setError] = useState('');
  const load = () => call(() => api.listGrants()).then((r) => setGrants(r.grants.filter((g) => !g.revoked_at)), (e) => setError(e.message));
  useEffect(() => void load(), []);
  const revoke = async (id: string) => {
    try {
      await call(() => api.revokeGrant({ path: { grant_id: id } }));
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <Page title={t('connectedApps')} back="/settings">
      <ErrorText error={error} />
      {grants.length === 0 ? (
        <p class="empty">{t('noApps')}</p>
      ) : (
        <ul class="list" aria-label={t('connectedApps')}>
          {grants.map((g) => (
            <li class="row" key={g.grant_id}>
              <span class="app-mark small" aria-hidden="true">{(g.client?.name ?? '?').slice(0, 1).toUpperCase()}</span>
              <span class="grow">
                <strong>{g.client?.name}</strong>
                <br />
                <span class="muted small">{(g.scopes ?? []).join(' · ')} · {t('since', { date: formatTime(g.created_at ?? '') })}</span>
              </span>
              <button type="button" onClick={() => revoke(g.grant_id!)}>{t('revoke')}</button>
            </li>
          ))}
        </ul>
      )}
    </Page>
  );
}
