"""one-statement debits: a PostgreSQL function for a plain debit by code

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

PostgreSQL only; nothing on SQLite, and no table changes. ``giftcard_plain_debit`` runs a plain
debit (by a code without a PIN, or with its right PIN, no program, enough available) in one call,
so in its own transaction, with the row locks taken in the order every writer takes them (the card,
then the code) and the holds read after the lock (app.store.plain_debits). Whenever anything is not
plain it writes nothing and returns no row, and the caller takes the full path, which answers why.
"""

from __future__ import annotations

from alembic import op


revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# The arguments, in order: what finds the code (its lookup hashes, one per key, its type, the
# caller's stores or NULL for all; or, for a code with a PIN, the code and its card as the caller
# read them, and the PIN given as it would be stored, the keyed hash), the time, the amount in minor units for the currencies of two
# decimals and for each other one (NULL where the amount has more decimals than it), the ledger
# row's own values, then the audit row's.
_FUNCTION = """
CREATE FUNCTION giftcard_plain_debit(
    p_hashes bytea[], p_code_type text, p_stores text[],
    p_code_id bigint, p_card_id bigint, p_pin_hash text, p_now timestamptz,
    p_amount bigint, p_currencies text[], p_amounts bigint[],
    p_entry_id bigint, p_trans_type text, p_source_id text, p_ref_no text, p_note text,
    p_location_id text, p_created_by text,
    p_audit_id bigint, p_occurred_at timestamptz, p_action text, p_outcome text, p_subject text,
    p_request_id text, p_client_address text
) RETURNS TABLE (currency text, held bigint, entry giftcard_transactions)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_found int;
    v_code_id bigint;
    v_card_id bigint;
    v_card giftcards%ROWTYPE;
    v_code giftcard_codes%ROWTYPE;
    v_slot int;
    v_amount bigint;
    v_held bigint;
    v_row giftcard_transactions%ROWTYPE;
BEGIN
    IF p_code_id IS NOT NULL THEN
        v_code_id := p_code_id;
        v_card_id := p_card_id;
    ELSE
        SELECT count(*), min(live.id), min(live.giftcard_id) INTO v_found, v_code_id, v_card_id
        FROM (
            SELECT c.id, c.giftcard_id FROM giftcard_codes c
            WHERE c.lookup_hash = ANY (p_hashes) AND c.code_type = p_code_type
              AND c.revoked_at IS NULL AND (p_stores IS NULL OR c.store_id = ANY (p_stores))
            LIMIT 2
        ) live;
        IF v_found <> 1 THEN
            RETURN;
        END IF;
    END IF;
    -- Card first, then code, as every writer locks; each statement below sees what committed
    -- before its lock was granted.
    SELECT * INTO v_card FROM giftcards g WHERE g.id = v_card_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO v_code FROM giftcard_codes c WHERE c.id = v_code_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- The PIN: none, or the one given (its keyed hash) with no wrong one counted and the code not
    -- locked, as the full path checks it; a wrong one is left to it, to count. Whatever is unknown
    -- (NULL) leaves the debit too.
    IF (v_code.giftcard_id <> v_card_id OR v_code.code_type <> p_code_type
       OR (p_stores IS NOT NULL AND NOT v_code.store_id = ANY (p_stores))
       OR v_code.revoked_at IS NOT NULL OR v_code.pin_hash IS DISTINCT FROM p_pin_hash
       OR v_code.failed_pin_attempts <> 0
       OR (v_code.pin_locked_until IS NOT NULL AND v_code.pin_locked_until > p_now)
       OR (v_code.expires_on IS NOT NULL AND v_code.expires_on < (p_now AT TIME ZONE 'UTC')::date)
       OR v_card.state <> 'ACTIVE' OR v_card.program_id IS NOT NULL
       OR (v_card.usable_from IS NOT NULL AND p_now < v_card.usable_from)
       OR (v_card.expires_at IS NOT NULL AND p_now >= v_card.expires_at)) IS NOT FALSE THEN
        RETURN;
    END IF;
    v_slot := array_position(p_currencies, v_card.currency::text);
    v_amount := CASE WHEN v_slot IS NULL THEN p_amount ELSE p_amounts[v_slot] END;
    IF v_amount IS NULL OR v_amount >= 0 THEN
        RETURN;
    END IF;
    SELECT coalesce(sum(-t.amount), 0) INTO v_held FROM giftcard_transactions t
    WHERE t.giftcard_id = v_card.id AND t.status = 'AUTHORIZED' AND t.amount < 0
      AND t.hold_expires_at > p_now;
    IF (v_card.balance - v_held < -v_amount) IS NOT FALSE THEN
        RETURN;
    END IF;
    UPDATE giftcards g SET balance = g.balance + v_amount, updated_at = p_now WHERE g.id = v_card.id;
    INSERT INTO giftcard_transactions (
        id, giftcard_id, store_id, trans_type, status, amount, balance_before, balance_after,
        settled_at, partial, code_type, code_id, source_id, ref_no, location_id, note, created_by,
        created_at
    ) VALUES (
        p_entry_id, v_card.id, v_card.store_id, p_trans_type, 'COMPLETED', v_amount, v_card.balance,
        v_card.balance + v_amount, p_now, false, p_code_type, v_code_id, p_source_id, p_ref_no,
        p_location_id, p_note, p_created_by, p_now
    ) RETURNING * INTO v_row;
    INSERT INTO audit_events (
        id, store_id, occurred_at, action, outcome, subject, giftcard_id, field, request_id,
        client_address, count
    ) VALUES (
        p_audit_id, v_card.store_id, p_occurred_at, p_action, p_outcome, p_subject, v_card.id, NULL,
        p_request_id, p_client_address, 1
    );
    RETURN QUERY SELECT v_card.currency::text, v_held, v_row;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS giftcard_plain_debit")
