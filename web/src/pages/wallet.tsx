import { useEffect, useState } from 'preact/hooks';
import * as api from '../api';
import { call, type Wallet as W } from '../api';
import { t, formatMoney } from '../i18n';
import { Page, ErrorText } from '../ui';

export function Wallet() {
  const [w, setW] = useState<W | null>(null);
  const [error, setError] = useState('');
  useEffect(() => void call(() => api.getWallet()).then(setW, (e) => setError(e.message)), []);
  return (
    <Page title={t('wallet')}>
      <ErrorText error={error} />
      {w?.balances.map((b) => (
        <p class="balance" key={b.currency}>{formatMoney(b.available, b.currency)}</p>
      ))}
    </Page>
  );
}
