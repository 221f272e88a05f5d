// Paying in a shop: the person's one-time payment code (QR and digits,
// renewed before it expires) for the shop to charge, or the shop's QR
// scanned with the camera (or typed) and paid after a confirmation. The
// balance is read live, so a sale shows at once.
import { useEffect, useRef, useState } from 'preact/hooks';
import { encode } from 'uqr';
import * as api from '../api';
import { call, type Sale } from '../api';
import { names } from '../chat';
import { t, formatMoney } from '../i18n';
import { Page, Icon, useAction } from '../ui';
import {
  wallet, balanceOf, mainCurrency, useLiveWallet, refreshWallet, parseAmount, useMoneyId, moneyError,
  AmountField, Review, Confirm, AvailableLine,
} from './paycard';

type Tab = 'code' | 'scan';

export function Pay() {
  const [tab, setTab] = useState<Tab>('code');
  useLiveWallet();
  return (
    <Page title={t('payInShop')}>
      <div class="segmented wide paytabs" role="group" aria-label={t('payInShop')}>
        <button type="button" aria-pressed={tab === 'code'} onClick={() => setTab('code')}>
          <Icon d="M4 4h6v6H4zM14 4h6v6h-6zM4 14h6v6H4zM14 14h2v2h-2zM18 18h2v2h-2z" /> {t('myCode')}
        </button>
        <button type="button" aria-pressed={tab === 'scan'} onClick={() => setTab('scan')}>
          <Icon d="M4 8V4h4M16 4h4v4M20 16v4h-4M8 20H4v-4M4 12h16" /> {t('scan')}
        </button>
      </div>
      {tab === 'code' ? <CodeView /> : <ScanView />}
    </Page>
  );
}

// ---- My code --------------------------------------------------------------

/** A code lives 60 s; a new one is fetched this long before. */
const renewBefore = 10_000;
const lifetime = 60_000;

type Code = { code: string; expires: number };

function CodeView() {
  const [code, setCode] = useState<Code | null>(null);
  const [now, setNow] = useState(Date.now());
  const [error, setError] = useState('');
  const [paid, setPaid] = useState<{ amount: number; currency: string } | null>(null);
  const issuing = useRef(false);
  const w = wallet.value;
  const b = balanceOf(w);

  const issue = async () => {
    if (issuing.current) return;
    issuing.current = true;
    try {
      const r = (await call(() => api.issuePaymentCode())) as { code: string; expires_at: string };
      // The browser's clock may be off: trust the server's lifetime, not its clock.
      const left = Math.min(lifetime, Math.max(renewBefore * 2, Date.parse(r.expires_at) - Date.now()));
      setCode({ code: r.code, expires: Date.now() + left });
      setError('');
    } catch (err) {
      setError(moneyError(err));
    } finally {
      issuing.current = false;
    }
  };

  useEffect(() => {
    void issue();
    const timer = setInterval(() => setNow(Date.now()), 1000);
    const onVisible = () => document.visibilityState === 'visible' && setNow(Date.now());
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, []);

  // Renew before it expires, while someone can see it.
  useEffect(() => {
    if (code && code.expires - now < renewBefore && document.visibilityState === 'visible') void issue();
  }, [now, code]);

  // A sale spends the code: the balance drops. Say so, and show a new code.
  const last = useRef<number | null>(null);
  useEffect(() => {
    if (!w) return;
    const prev = last.current;
    last.current = b.available;
    if (prev !== null && b.available < prev) {
      setPaid({ amount: prev - b.available, currency: b.currency });
      void issue();
    }
  }, [w]);

  const secs = code ? Math.max(0, Math.ceil((code.expires - now - renewBefore) / 1000)) : 0;
  const pct = code ? Math.max(0, Math.min(100, ((code.expires - now - renewBefore) / (lifetime - renewBefore)) * 100)) : 0;
  return (
    <div class="paycode">
      <p class="balance-line">
        {t('available')} <strong aria-live="polite">{w ? formatMoney(b.available, b.currency) : '—'}</strong>
      </p>
      {paid && (
        <div class="paid-banner" role="status">
          <Icon d="M5 12l5 5 9-10" />
          <span>
            <strong>{t('paidShop', { amount: formatMoney(paid.amount, paid.currency) })}</strong>
            <span class="block small">{t('newBalance', { amount: formatMoney(b.available, b.currency) })}</span>
          </span>
          <button type="button" class="iconbtn plain" aria-label={t('close')} onClick={() => setPaid(null)}>
            <Icon d="M6 6l12 12M18 6L6 18" />
          </button>
        </div>
      )}
      <div class="code-card">
        {code ? (
          <>
            <QR text={code.code} label={t('codeQr')} />
            <p class="code-digits"><span class="sr-only">{t('codeDigits')}: </span>{group(code.code)}</p>
            <div class="countdown" aria-hidden="true"><div class="countdown-bar" style={{ width: `${pct}%` }} /></div>
            <p class="muted small countdown-text">{t('renewsIn', { s: secs })}</p>
          </>
        ) : (
          <p class="muted code-loading" role="status">{error ? '' : t('codeLoading')}</p>
        )}
        {error && <p class="error" role="alert">{error}</p>}
        <p class="muted small">{t('codeHelp')}</p>
        <button type="button" class="link" onClick={() => void issue()}>{t('renewCode')}</button>
      </div>
    </div>
  );
}

function group(code: string): string {
  return code.replace(/(\d{4})(?=\d)/g, '$1 ');
}

/** A QR code drawn as one SVG path: no markup strings, nothing inline. */
function QR({ text, label }: { text: string; label: string }) {
  const qr = encode(text, { ecc: 'M', border: 2 });
  let d = '';
  qr.data.forEach((row, y) => row.forEach((dark, x) => {
    if (dark) d += `M${x} ${y}h1v1h-1z`;
  }));
  return (
    <svg class="qr" role="img" aria-label={label} viewBox={`0 0 ${qr.size} ${qr.size}`} shape-rendering="crispEdges">
      <rect width={qr.size} height={qr.size} fill="#fff" />
      <path d={d} fill="#111" />
    </svg>
  );
}

// ---- Scanning a shop's QR -------------------------------------------------

/** A merchant QR: superapp:pay?m=<merchant>[&q=<single-use id with its amount>]. */
type ShopQR = { raw: string; merchant: string; dynamic: boolean };

function parseShopQR(text: string): ShopQR | null {
  const s = text.trim();
  const rest = s.startsWith('superapp:pay?') ? s.slice('superapp:pay?'.length) : null;
  if (rest === null) return null;
  const q = new URLSearchParams(rest);
  const m = q.get('m');
  if (!m) return null;
  return { raw: s, merchant: m, dynamic: !!q.get('q') };
}

function ScanView() {
  const [qr, setQr] = useState<ShopQR | null>(null);
  const [sale, setSale] = useState<Sale | null>(null);
  const [round, setRound] = useState(0);
  if (sale && qr) return <Paid sale={sale} qr={qr} onDone={() => { setSale(null); setQr(null); setRound(round + 1); }} />;
  if (qr) return <ConfirmShop qr={qr} round={round} onBack={() => setQr(null)} onPaid={setSale} />;
  return <Scanner onFound={setQr} />;
}

function Scanner({ onFound }: { onFound: (qr: ShopQR) => void }) {
  const video = useRef<HTMLVideoElement>(null);
  const [camera, setCamera] = useState<'off' | 'starting' | 'on' | 'unavailable' | 'denied'>('off');
  const [typed, setTyped] = useState('');
  const [error, setError] = useState('');
  const stream = useRef<MediaStream | null>(null);
  const stopped = useRef(false);

  const stop = () => {
    stream.current?.getTracks().forEach((tr) => tr.stop());
    stream.current = null;
  };

  const start = async () => {
    setError('');
    if (!navigator.mediaDevices?.getUserMedia) return setCamera('unavailable');
    setCamera('starting');
    try {
      const s = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
      if (stopped.current) return s.getTracks().forEach((tr) => tr.stop());
      stream.current = s;
      const v = video.current!;
      v.srcObject = s;
      await v.play();
      setCamera('on');
      void decodeLoop(v);
    } catch (err) {
      setCamera((err as DOMException)?.name === 'NotAllowedError' ? 'denied' : 'unavailable');
    }
  };

  /** Reads frames until a superapp shop QR shows: BarcodeDetector if the browser has one, else jsQR (loaded only now). */
  const decodeLoop = async (v: HTMLVideoElement) => {
    type Detector = { detect: (s: CanvasImageSource) => Promise<{ rawValue: string }[]> };
    const BD = (globalThis as unknown as { BarcodeDetector?: new (o: { formats: string[] }) => Detector }).BarcodeDetector;
    let detector: Detector | null = null;
    try {
      detector = BD ? new BD({ formats: ['qr_code'] }) : null;
    } catch {
      detector = null;
    }
    const jsqr = detector ? null : (await import('jsqr')).default;
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    let warned = false;
    while (!stopped.current && stream.current) {
      await new Promise((r) => setTimeout(r, 200));
      if (v.readyState < 2 || !v.videoWidth) continue;
      let found: string | null = null;
      if (detector) {
        try {
          found = (await detector.detect(v))[0]?.rawValue ?? null;
        } catch {
          found = null;
        }
      } else if (jsqr && ctx) {
        const scale = Math.min(1, 640 / Math.max(v.videoWidth, v.videoHeight));
        canvas.width = Math.round(v.videoWidth * scale);
        canvas.height = Math.round(v.videoHeight * scale);
        ctx.drawImage(v, 0, 0, canvas.width, canvas.height);
        const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
        found = jsqr(img.data, img.width, img.height, { inversionAttempts: 'dontInvert' })?.data ?? null;
      }
      if (!found) continue;
      const qr = parseShopQR(found);
      if (qr) {
        stop();
        onFound(qr);
        return;
      }
      if (!warned) {
        warned = true;
        setError(t('notShopQr'));
      }
    }
  };

  useEffect(() => {
    stopped.current = false;
    void start();
    return () => {
      stopped.current = true;
      stop();
    };
  }, []);

  const submit = (e: Event) => {
    e.preventDefault();
    setError('');
    const qr = parseShopQR(typed);
    if (!qr) return setError(t('notShopQr'));
    stopped.current = true;
    stop();
    onFound(qr);
  };

  return (
    <div class="scanner">
      <div class={`viewfinder ${camera}`}>
        <video ref={video} muted playsInline aria-label={t('cameraVideo')} />
        {camera !== 'on' && (
          <div class="viewfinder-msg">
            <Icon d="M4 8V4h4M16 4h4v4M20 16v4h-4M8 20H4v-4" />
            <p>
              {camera === 'unavailable' ? t('cameraUnavailable') : camera === 'denied' ? t('cameraDenied')
                : camera === 'starting' ? t('loading') : t('scanHelp')}
            </p>
            {(camera === 'off' || camera === 'denied') && (
              <button type="button" onClick={() => { stopped.current = false; void start(); }}>{t('startCamera')}</button>
            )}
          </div>
        )}
      </div>
      {camera === 'on' && <p class="muted small center">{t('scanHelp')}</p>}
      <form class="form typed" onSubmit={submit} noValidate>
        <label class="field">
          <span>{t('shopCode')}</span>
          <input value={typed} autocomplete="off" spellcheck={false} aria-describedby="shop-code-hint"
            onInput={(e) => setTyped(e.currentTarget.value)} />
          <small id="shop-code-hint">{t('shopCodeHint')}</small>
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        <button class="primary big" type="submit" disabled={!typed.trim()}>{t('continue')}</button>
      </form>
    </div>
  );
}

function shopName(merchant: string): string {
  return names.value[merchant] || t('shop', { id: merchant.slice(0, 6) });
}

function ConfirmShop({ qr, round, onBack, onPaid }: { qr: ShopQR; round: number; onBack: () => void; onPaid: (s: Sale) => void }) {
  const currency = mainCurrency();
  const [text, setText] = useState('');
  const [step, setStep] = useState<'edit' | 'review'>(qr.dynamic ? 'review' : 'edit');
  const { busy, error, setError, run } = useAction(moneyError);
  const amount = qr.dynamic ? 0 : parseAmount(text, currency);
  const id = useMoneyId('qr', qr.raw, amount, round);
  const name = shopName(qr.merchant);

  const next = (e: Event) => {
    e.preventDefault();
    setError('');
    if (!amount) return setError(t('errAmount'));
    setStep('review');
  };
  const pay = () =>
    run(async () => {
      const s = await call(() => api.payQr({
        headers: { 'Idempotency-Key': id } as never,
        body: { id, qr: qr.raw, ...(qr.dynamic ? {} : { amount: amount!, currency }) },
      }));
      void refreshWallet().catch(() => {});
      onPaid(s);
    });

  return (
    <section class="confirm-shop" aria-labelledby="shop-h">
      <div class="shop-head">
        <span class="app-mark" aria-hidden="true">{name[0]?.toUpperCase()}</span>
        <h2 id="shop-h">{t('payShop', { name })}</h2>
      </div>
      {step === 'edit' ? (
        <form class="form" onSubmit={next} noValidate>
          <AvailableLine />
          <AmountField value={text} onInput={setText} currency={currency} autoFocus />
          {error && <p class="error" role="alert">{error}</p>}
          <div class="buttons">
            <button type="button" onClick={onBack}>{t('cancel')}</button>
            <button class="primary" type="submit">{t('next')}</button>
          </div>
        </form>
      ) : (
        <div class="form">
          {qr.dynamic ? (
            <p class="review-lines">{t('amountByShop')}</p>
          ) : (
            <Review amount={amount!} currency={currency} lines={<p>{t('payShop', { name })}</p>} />
          )}
          <AvailableLine />
          {error && <p class="error" role="alert">{error}</p>}
          <Confirm busy={busy} onBack={qr.dynamic ? onBack : () => setStep('edit')} backLabel={qr.dynamic ? t('cancel') : t('edit')} onConfirm={pay}
            label={qr.dynamic ? t('confirmPayShop') : t('confirmPay', { amount: formatMoney(amount!, currency) })} />
        </div>
      )}
    </section>
  );
}

function Paid({ sale, qr, onDone }: { sale: Sale; qr: ShopQR; onDone: () => void }) {
  const w = wallet.value;
  const b = balanceOf(w);
  const ref = useRef<HTMLButtonElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <section class="paid" aria-labelledby="paid-h">
      <span class="paid-mark" aria-hidden="true"><Icon d="M5 12l5 5 9-10" /></span>
      <h2 id="paid-h">{t('paidTo', { amount: formatMoney(sale.amount ?? 0, sale.currency ?? b.currency), name: shopName(qr.merchant) })}</h2>
      <p class="muted">{t('newBalance', { amount: formatMoney(b.available, b.currency) })}</p>
      <button ref={ref} type="button" class="primary big" onClick={onDone}>{t('done')}</button>
    </section>
  );
}
