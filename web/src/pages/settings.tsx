import { useEffect, useState } from 'preact/hooks';
import * as api from '../api';
import { call, type Session as Device } from '../api';
import { session } from '../session';
import { net } from '../net';
import { names } from '../chat';
import { t, lang, setLang, formatTime } from '../i18n';
import { Page, ErrorText } from '../ui';

export function Settings() {
  const [name, setName] = useState('');
  const [status, setStatus] = useState('');
  const [saved, setSaved] = useState(false);
  const [devices, setDevices] = useState<(Device & { current?: boolean })[]>([]);
  const [error, setError] = useState('');

  const load = async () => {
    try {
      const [me, ss] = await Promise.all([call(() => api.getMe()), call(() => api.listSessions())]);
      setName(me.name);
      setStatus(me.status_message);
      setDevices(ss.sessions);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  useEffect(() => void load(), []);

  const save = async (e: Event) => {
    e.preventDefault();
    setError('');
    try {
      const me = await call(() => api.updateMe({ body: { name: name.trim(), status_message: status.trim() } }));
      names.value = { ...names.value, [me.user_id]: me.name };
      setSaved(true);
      setTimeout(() => setSaved(false), 2000);
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const revoke = async (id: string) => {
    try {
      await call(() => api.revokeSession({ path: { id } }));
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const logout = () => session.logout();

  return (
    <Page title={t('settings')}>
      <ErrorText error={error} />
      <h2>{t('profile')}</h2>
      <form class="form" onSubmit={save}>
        <label>
          <span>{t('name')}</span>
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          <span>{t('statusMessage')}</span>
          <input value={status} onInput={(e) => setStatus(e.currentTarget.value)} />
        </label>
        <button class="primary" type="submit">{saved ? t('saved') : t('save')}</button>
      </form>
      <h2>{t('language')}</h2>
      <div class="segmented" role="group" aria-label={t('language')}>
        <button type="button" aria-pressed={lang.value === 'en'} onClick={() => setLang('en')}>English</button>
        <button type="button" aria-pressed={lang.value === 'ko'} onClick={() => setLang('ko')}>한국어</button>
      </div>
      <h2>{t('devices')}</h2>
      <ul class="list" aria-label={t('devices')}>
        {devices.map((d) => (
          <li class="row" key={d.session_id}>
            <span class="grow">
              <strong>{d.device || 'Browser'}</strong>
              {d.current && <span class="pill">{t('thisDevice')}</span>}
              <br />
              <span class="muted small">{t('signedIn', { date: formatTime(d.created_at) })}</span>
            </span>
            {!d.current && <button type="button" onClick={() => revoke(d.session_id)}>{t('revoke')}</button>}
          </li>
        ))}
      </ul>
      <div class="settings-foot">
        <a href="/apps">{t('connectedApps')}</a>
        {net.dc && <p class="muted small">{t('connectedTo', { dc: net.dc })}</p>}
        <button class="danger" type="button" onClick={logout}>{t('logout')}</button>
      </div>
    </Page>
  );
}
