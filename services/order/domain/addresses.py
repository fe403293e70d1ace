"""Delivery addresses: a user's address book, and the copy an order keeps of one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.common.errors import Forbidden
from services.common.identity import Caller


@dataclass(frozen=True)
class AddressFields:
    recipient: str
    phone: str
    postal_code: str
    line1: str
    line2: str = ""


@dataclass(frozen=True)
class Address:
    id: int
    user_id: str
    fields: AddressFields
    created_at: datetime
    updated_at: datetime

    def check_owner(self, caller: Caller) -> None:
        """Only the owner reads or changes an address (an admin neither: it is personal)."""
        if caller.user_id != self.user_id:
            raise Forbidden("this address belongs to another user")

    def snapshot(self) -> dict[str, Any]:
        """What an order keeps: the address as it was when the order was placed."""
        f = self.fields
        return {"addressId": self.id, "recipient": f.recipient, "phone": f.phone,
                "postalCode": f.postal_code, "line1": f.line1, "line2": f.line2}
