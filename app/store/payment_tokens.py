"""Payment tokens (DESIGN §12): the rows behind ``giftcardTokenize`` and spending by token."""

from __future__ import annotations

from app.token_models import PaymentToken

__all__ = ["PaymentToken"]
