package pay

import (
	"superapp/internal/ledger"
	"superapp/internal/store"
)

// Pay's layout in the LEDGER stream's space, next to the ledger's own
// families (acct/, journal/, xfer/, expiry/, ledger: see ledger/keys.go).
// Users and merchants are identity's ids or service names, which hold no
// "/".
// <id> is a ledger ID's 16 raw bytes; <n> is store.Seq.
//
//	wallet/<user>/<currency>        the user has a wallet in currency; empty. Balances lists them.
//	stmt/<user>/<n>                 the user's statement line n (Entry, JSON), from 0: n is
//	                                the paging index Statement answers with.
//	lines/<log prefix>              how many lines the log under the prefix (stmt/<user>/,
//	                                mlog/<merchant>/) holds (8 bytes): the next line's n.
//	spent/<user>/<currency>/<day>   what the user sent that UTC day (8 bytes), for the limits.
//	hold/<id>                       a hold (Hold, JSON): its payer, payee and what became of it.
//	envelope/<id>                   a red envelope (envelopeRecord, JSON).
//	envopen/<cursor>                an envelope still open, in the order they were made: its id
//	                                and expiry (openEnvelope); loaded into State.open.
//	merchant/<user>                 a registered merchant (Merchant, JSON).
//	qr/<qr id>                      a dynamic QR (qrCode, JSON), until and after it is paid.
//	code/<hash>                     a payment code (payCode, JSON), until forgotten an hour
//	                                after it expired.
//	codeorder/<cursor>              the codes in the order they were issued (the hash), for
//	                                forgetting them oldest first.
//	sale/<id>                       a merchant's sale (Sale, JSON).
//	mlog/<merchant>/<n>             the merchant's statement line n (Entry, JSON).
//	bankop/<id>                     an open bank operation (BankOp, JSON); loaded into
//	                                State.bankOps.

// The families apply reads for every payment, through the State's overlay.
const (
	walletFamily = "wallet/"
	spentFamily  = "spent/"
	linesFamily  = "lines/"
)

func walletKey(user, currency string) string { return store.Key("wallet", user, currency) }

func linesKey(logPrefix string) string { return linesFamily + logPrefix }

func walletPrefix(user string) string { return store.Key("wallet", user, "") }

func statementPrefix(user string) string { return store.Key("stmt", user, "") }

func spentKey(user, currency, day string) string { return store.Key("spent", user, currency, day) }

func holdKey(id ledger.ID) string { return "hold/" + string(id[:]) }

func envelopeKey(id ledger.ID) string { return "envelope/" + string(id[:]) }

const openEnvelopePrefix = "envopen/"

func openEnvelopeKey(cursor uint64) string { return openEnvelopePrefix + store.Seq(cursor) }

func merchantKey(user string) string { return store.Key("merchant", user) }

func qrKey(id string) string { return store.Key("qr", id) }

func codeKey(hash string) string { return store.Key("code", hash) }

const codeOrderPrefix = "codeorder/"

func codeOrderKey(cursor uint64) string { return codeOrderPrefix + store.Seq(cursor) }

func saleKey(id ledger.ID) string { return "sale/" + string(id[:]) }

func merchantLogPrefix(merchant string) string { return store.Key("mlog", merchant, "") }

const bankOpPrefix = "bankop/"

func bankOpKey(id ledger.ID) string { return bankOpPrefix + string(id[:]) }
