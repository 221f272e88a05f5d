// The wallet: the balance (live), top-up, sending money to a friend, the
// pay requests mini-apps are waiting on, and the statement.
import { useEffect, useRef, useState } from 'preact/hooks';
import * as api from '../api';
import { call, type Friend, type PayRequest, type Statement } from '../api';
import { names } from '../chat';
import { t, lang, formatMoney, formatTime, type Key } from '../i18n';
import { Page, Icon, Avatar, ErrorText, useAction } from '../ui';
import {
  wallet, balanceOf, mainCurrency, useLiveWallet, refreshWallet, parseAmount, useMoneyId, moneyError,
  Sheet, AmountField, Review, AvailableLine, Confirm,
} from './paycard';

type Entry = Statement['entries'][number];
type Dialog = null | 'topup' | 'send' | { approve: PayRequest };

const pageSize = 20;

export function Wallet() {
  const [dialog, setDialog] = useState<Dialog>(null);
  const [requests, setRequests] = useState<PayRequest[]>([]);
  const [entries, setEntries] = useState<Entry[]>([]);
  const [before, setBefore] = useState<number | undefined>(undefined);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState('');
  const [note, setNote] = useState('');
  const [busyReq, setBusyReq] = useState('');
  const w = wallet.value;
  const b = balanceOf(w);

  const loadRequests = async () => {
    const r = await call(() => api.listPayRequests());
    setRequests(r.pay_requests ?? []);
  };

  /** The statement's newest page, merged above what is shown. */
  const shown = useRef<Entry[]>([]);
  shown.current = entries;
  const loadNewest = async () => {
    const s = await call(() => api.walletStatement({ query: { limit: pageSize } }));
    const have = shown.current;
    if (!have.length) {
      setEntries(s.entries);
      setBefore(s.before);
    } else {
      const seen = new Set(have.map(key));
      const fresh = s.entries.filter((e) => !seen.has(key(e)));
      if (fresh.length) setEntries([...fresh, ...have]);
    }
    setLoaded(true);
  };

  const loadOlder = async () => {
    try {
      const s = await call(() => api.walletStatement({ query: { limit: pageSize, before } }));
      setEntries((have) => [...have, ...s.entries]);
      setBefore(s.before);
    } catch (err) {
      setError(moneyError(err));
    }
  };

  useEffect(() => {
    void loadNewest().catch((err) => setError(moneyError(err)));
    void loadRequests().catch(() => {});
  }, []);

  // The balance is read every 2 s; the list of requests with it, and the
  // statement when the balance moved.
  const [seen, setSeen] = useState('');
  useLiveWallet(loadRequests);
  useEffect(() => {
    const sig = JSON.stringify(w?.balances ?? []);
    if (w && seen && sig !== seen) void loadNewest().catch(() => {});
    if (w) setSeen(sig);
  }, [w]);

  const done = (msg: string) => {
    setDialog(null);
    setNote(msg);
    void refreshWallet().catch(() => {});
    void loadNewest().catch(() => {});
    void loadRequests().catch(() => {});
  };

  const decline = async (r: PayRequest) => {
    setBusyReq(r.pay_request_id ?? '');
    setError('');
    try {
      await call(() => api.declinePayRequest({ path: { pay_request_id: r.pay_request_id! } }));
      setNote(t('declined'));
      await loadRequests();
    } catch (err) {
      setError(moneyError(err));
    } finally {
      setBusyReq('');
    }
  };

  return (
    <Page title={t('wallet')}>
      <section class="balance-card" aria-label={t('balance')}>
        <p class="balance-label">{t('available')}</p>
        <p class="balance-amount" aria-live="polite">{w ? formatMoney(b.available, b.currency) : '—'}</p>
        <p class="balance-pending small">{t('pendingMoney')} {formatMoney(b.pending, b.currency)}</p>
        <div class="balance-actions">
          <button type="button" onClick={() => { setNote(''); setDialog('topup'); }}>
            <Icon d="M12 5v14M5 12h14" /> {t('topUp')}
          </button>
          <button type="button" onClick={() => { setNote(''); setDialog('send'); }}>
            <Icon d="M4 12h14M13 6l6 6-6 6" /> {t('sendMoney')}
          </button>
          <a class="button" href="/pay">
            <Icon d="M4 4h6v6H4zM14 4h6v6h-6zM4 14h6v6H4zM14 14h2v2h-2zM18 18h2v2h-2z" /> {t('payInShop')}
          </a>
        </div>
      </section>
      {note && <p class="note" role="status">{note}</p>}
      <ErrorText error={error} />

      {requests.length > 0 && (
        <section aria-labelledby="payreq-h">
          <h2 id="payreq-h">{t('payRequests')}</h2>
          <ul class="list" aria-labelledby="payreq-h">
            {requests.map((r) => {
              const app = r.client?.name || t('anApp');
              const busy = busyReq === r.pay_request_id;
              return (
                <li key={r.pay_request_id} class="payreq">
                  <div class="row">
                    <span class="app-mark small" aria-hidden="true">{app[0]?.toUpperCase()}</span>
                    <span class="grow">
                      <strong>{app}</strong>
                      <span class="muted small block">{r.description || t('payRequestFrom', { app })}</span>
                      {r.expires_at && <span class="muted small block">{t('expiresAt', { time: formatWhen(r.expires_at) })}</span>}
                    </span>
                    <strong class="amount">{formatMoney(r.amount ?? 0, r.currency ?? mainCurrency())}</strong>
                  </div>
                  <div class="payreq-actions">
                    <button type="button" disabled={busy} onClick={() => decline(r)} aria-label={`${t('decline')}: ${app} ${formatMoney(r.amount ?? 0, r.currency ?? mainCurrency())}`}>
                      {t('decline')}
                    </button>
                    <button type="button" class="primary" disabled={busy} onClick={() => { setNote(''); setDialog({ approve: r }); }}
                      aria-label={`${t('approve')}: ${app} ${formatMoney(r.amount ?? 0, r.currency ?? mainCurrency())}`}>
                      {t('approve')}
                    </button>
                  </div>
                </li>
              );
            })}
          </ul>
        </section>
      )}

      <section aria-labelledby="statement-h">
        <h2 id="statement-h">{t('statement')}</h2>
        {loaded && entries.length === 0 ? (
          <p class="empty">{t('noStatement')}</p>
        ) : (
          <ul class="list statement" aria-labelledby="statement-h">
            {entries.map((e) => <StatementRow key={key(e)} e={e} />)}
          </ul>
        )}
        {before !== undefined && entries.length > 0 && (
          <button type="button" class="more" onClick={loadOlder}>{t('showMore')}</button>
        )}
      </section>

      {dialog === 'topup' && <TopUpSheet onClose={() => setDialog(null)} onDone={done} />}
      {dialog === 'send' && <SendSheet onClose={() => setDialog(null)} onDone={done} />}
      {dialog && typeof dialog === 'object' && <ApproveSheet r={dialog.approve} onClose={() => setDialog(null)} onDone={done} />}
    </Page>
  );
}

/** A deadline: the day and the time. */
function formatWhen(iso: string): string {
  return new Intl.DateTimeFormat(lang.value, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' }).format(new Date(iso));
}

function key(e: Entry): string {
  return `${e.transfer_id}/${e.kind}`;
}

/** Money in, money out, or neither (a hold already counted). */
const direction: Record<string, 1 | -1 | 0> = {
  topup: 1, received: 1, returned: 1, refund: 1, released: 1,
  sent: -1, hold: -1, envelope: -1, withdrawal: -1, captured: 0,
};

function StatementRow({ e }: { e: Entry }) {
  // Only people the page knows by name are named (a shop is not, yet).
  const who = e.counterparty ? names.value[e.counterparty] : undefined;
  const kind = e.kind as string;
  const dir = direction[kind] ?? 0;
  let label: string;
  if (kind === 'sent' && who) label = t('st_sentTo', { name: who });
  else if (kind === 'received' && who) label = t('st_receivedFrom', { name: who });
  else label = t(`st_${kind}` as Key) || kind;
  const amount = formatMoney(e.amount, e.currency);
  return (
    <li class="row st-row" data-kind={kind}>
      <span class={`st-icon ${dir > 0 ? 'in' : dir < 0 ? 'out' : ''}`} aria-hidden="true">
        <Icon d={dir > 0 ? 'M12 19V5M6 11l6-6 6 6' : dir < 0 ? 'M12 5v14M6 13l6 6 6-6' : 'M5 12h14'} />
      </span>
      <span class="grow">
        <span class="block">{label}</span>
        <time class="muted small" dateTime={e.at}>{formatTime(e.at)}</time>
      </span>
      <strong class={`amount ${dir > 0 ? 'in' : ''}`}>{dir > 0 ? `+${amount}` : dir < 0 ? `−${amount}` : amount}</strong>
    </li>
  );
}

function TopUpSheet({ onClose, onDone }: { onClose: () => void; onDone: (msg: string) => void }) {
  const currency = mainCurrency();
  const [text, setText] = useState('');
  const [step, setStep] = useState<'edit' | 'review'>('edit');
  const { busy, error, setError, run } = useAction(moneyError);
  const amount = parseAmount(text, currency);
  const id = useMoneyId('topup', amount, currency);

  const next = (e: Event) => {
    e.preventDefault();
    setError('');
    if (!amount) return setError(t('errAmount'));
    setStep('review');
  };
  const go = () =>
    run(async () => {
      const p = await call(() => api.topUp({ body: { id, amount: amount!, currency }, headers: { 'Idempotency-Key': id } as never }));
      onDone(t('topUpDone', { amount: formatMoney(p.amount, p.currency) }));
    });
  const quick = currency === 'KRW' ? [10_000, 50_000, 100_000] : undefined;
  return (
    <Sheet title={t('topUpTitle')} onClose={onClose}>
      {step === 'edit' ? (
        <form class="form" onSubmit={next} noValidate>
          <AvailableLine topUpLink={false} />
          <AmountField value={text} onInput={setText} currency={currency} quick={quick} autoFocus />
          {error && <p class="error" role="alert">{error}</p>}
          <button class="primary big" type="submit">{t('next')}</button>
        </form>
      ) : (
        <div class="form">
          <Review amount={amount!} currency={currency} lines={<p>{t('topUpReview', { amount: formatMoney(amount!, currency) })}</p>} />
          {error && <p class="error" role="alert">{error}</p>}
          <Confirm busy={busy} onBack={() => setStep('edit')} onConfirm={go} label={`${t('topUp')} ${formatMoney(amount!, currency)}`} />
        </div>
      )}
    </Sheet>
  );
}

function SendSheet({ onClose, onDone }: { onClose: () => void; onDone: (msg: string) => void }) {
  const currency = mainCurrency();
  const [friends, setFriends] = useState<Friend[] | null>(null);
  const [to, setTo] = useState('');
  const [text, setText] = useState('');
  const [step, setStep] = useState<'edit' | 'review'>('edit');
  const { busy, error, setError, run } = useAction(moneyError);
  const amount = parseAmount(text, currency);
  const id = useMoneyId('send', to, amount, currency);
  const friend = friends?.find((f) => f.user_id === to);

  useEffect(() => {
    call(() => api.listFriends()).then((r) => {
      setFriends(r.friends);
      names.value = { ...names.value, ...Object.fromEntries(r.friends.map((f) => [f.user_id, f.name])) };
    }, (err) => setError(moneyError(err)));
  }, []);

  const next = (e: Event) => {
    e.preventDefault();
    setError('');
    if (!to) return setError(t('chooseFriend'));
    if (!amount) return setError(t('errAmount'));
    setStep('review');
  };
  const go = () =>
    run(async () => {
      const p = await call(() => api.payUser({ body: { id, to_user: to, amount: amount!, currency }, headers: { 'Idempotency-Key': id } as never }));
      onDone(t('sentMoney', { amount: formatMoney(p.amount, p.currency), name: friend?.name ?? '' }));
    });
  return (
    <Sheet title={t('sendMoney')} onClose={onClose}>
      {step === 'edit' ? (
        <form class="form" onSubmit={next} noValidate>
          <AvailableLine topUpLink={false} />
          {friends && friends.length === 0 ? (
            <p class="muted">{t('noFriendsToPay')} <a href="/friends">{t('friends')}</a></p>
          ) : (
            <fieldset class="pick">
              <legend>{t('sendTo')}</legend>
              <div class="pick-list">
                {(friends ?? []).map((f) => (
                  <label class="pick-row" key={f.user_id}>
                    <input type="radio" name="to" value={f.user_id} checked={to === f.user_id} onChange={() => setTo(f.user_id)} />
                    <Avatar name={f.name} />
                    <span class="grow">{f.name}</span>
                  </label>
                ))}
              </div>
            </fieldset>
          )}
          <AmountField value={text} onInput={setText} currency={currency} />
          {error && <p class="error" role="alert">{error}</p>}
          <button class="primary big" type="submit" disabled={!friends?.length}>{t('next')}</button>
        </form>
      ) : (
        <div class="form">
          <Review amount={amount!} currency={currency} lines={<p>{t('sendReview', { amount: formatMoney(amount!, currency), name: friend?.name ?? '' })}</p>} />
          {error && <p class="error" role="alert">{error}</p>}
          <Confirm busy={busy} onBack={() => setStep('edit')} onConfirm={go} label={t('confirmSend', { amount: formatMoney(amount!, currency) })} />
        </div>
      )}
    </Sheet>
  );
}

function ApproveSheet({ r, onClose, onDone }: { r: PayRequest; onClose: () => void; onDone: (msg: string) => void }) {
  const { busy, error, setError, run } = useAction(moneyError);
  const app = r.client?.name || t('anApp');
  const currency = r.currency ?? mainCurrency();
  const amount = formatMoney(r.amount ?? 0, currency);
  // Approving is keyed by the request itself: sent again, it pays once.
  const go = () =>
    run(async () => {
      await call(() => api.approvePayRequest({ path: { pay_request_id: r.pay_request_id! } }));
      onDone(t('approved', { amount, app }));
    });
  return (
    <Sheet title={t('payRequests')} onClose={onClose}>
      <div class="form">
        <Review amount={r.amount ?? 0} currency={currency} lines={<>
          <p>{t('approveReview', { amount, app })}</p>
          {r.description && <p class="muted">{r.description}</p>}
        </>} />
        <AvailableLine topUpLink={false} />
        {error && <p class="error" role="alert">{error}</p>}
        <Confirm busy={busy} onBack={onClose} backLabel={t('cancel')} onConfirm={go} label={t('confirmPay', { amount })} />
      </div>
    </Sheet>
  );
}
