"""Who may call what. Every admin root field carries ``permission_classes=[AdminOnly]``.

Until authentication lands (issue 12: principals and roles on the context) everyone passes: this is the
single hook that check replaces, so no admin field can be forgotten then.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.permission import BasePermission


class AdminOnly(BasePermission):
    message = "this operation needs the admin role"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return True  # issue 12: return the request principal's roles include "admin"
