"""Discord's JSON error bodies, with the status and error codes Discord itself uses.

Every refusal the fake makes goes through :class:`DiscordError`, so the bot under test
sees exactly what Discord would send: a status, a numeric ``code`` and a ``message``, and
for form validation (code 50035) a nested ``errors`` object that discord.py flattens into
``In embeds.0.title: Must be 256 or fewer in length.``
"""

from __future__ import annotations

from typing import Any

# Discord's JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
GENERAL = 0
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
UNKNOWN_APPLICATION_COMMAND = 10063
UNKNOWN_INTERACTION = 10062
REQUEST_ENTITY_TOO_LARGE = 40005
INTERACTION_ALREADY_ACKNOWLEDGED = 40060
MISSING_ACCESS = 50001
CANNOT_EDIT_OTHERS_MESSAGE = 50005
CANNOT_SEND_EMPTY_MESSAGE = 50006
CANNOT_MESSAGE_USER = 50007
MISSING_PERMISSIONS = 50013
INVALID_WEBHOOK_TOKEN = 50027
INVALID_FORM_BODY = 50035


class DiscordError(Exception):
    """A refusal the fake answers with Discord's status code and JSON error body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} (code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON body Discord sends with this error."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def field_error(path: tuple[str | int, ...], code: str, message: str) -> dict[str, Any]:
    """Nest one field error at ``path`` as Discord does: ``{"a": {"0": {"_errors": [...]}}}``."""
    node: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        node = {str(key): node}
    return node


def invalid_form_body(path: tuple[str | int, ...], code: str, message: str) -> DiscordError:
    """400 Invalid Form Body (50035) naming one field, as Discord reports validation errors."""
    return DiscordError(
        400, INVALID_FORM_BODY, "Invalid Form Body", field_error(path, code, message)
    )


def too_long(path: tuple[str | int, ...], limit: int) -> DiscordError:
    """A string or list longer than Discord allows (``BASE_TYPE_MAX_LENGTH``)."""
    return invalid_form_body(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def bad_length(path: tuple[str | int, ...], low: int, high: int) -> DiscordError:
    """A string outside ``low..high`` characters (``BASE_TYPE_BAD_LENGTH``)."""
    return invalid_form_body(
        path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length."
    )


def required(path: tuple[str | int, ...]) -> DiscordError:
    """A missing required field (``BASE_TYPE_REQUIRED``)."""
    return invalid_form_body(path, "BASE_TYPE_REQUIRED", "This field is required")


def unauthorized() -> DiscordError:
    """A bot token Discord does not know."""
    return DiscordError(401, GENERAL, "401: Unauthorized")


def not_found() -> DiscordError:
    """A route Discord does not have."""
    return DiscordError(404, GENERAL, "404: Not Found")


def unknown_interaction() -> DiscordError:
    """The interaction is unknown or its 3-second window to respond has passed."""
    return DiscordError(404, UNKNOWN_INTERACTION, "Unknown interaction")


def already_acknowledged() -> DiscordError:
    """The interaction already has its one initial response."""
    return DiscordError(
        400, INTERACTION_ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged."
    )


def invalid_webhook_token() -> DiscordError:
    """The interaction token has passed its 15 minutes of life."""
    return DiscordError(401, INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")


def unknown_webhook() -> DiscordError:
    """No webhook (or not-yet-acknowledged interaction) with this id and token."""
    return DiscordError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")


def unknown_message() -> DiscordError:
    return DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")


def unknown_channel() -> DiscordError:
    return DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel")


def unknown_guild() -> DiscordError:
    return DiscordError(404, UNKNOWN_GUILD, "Unknown Guild")


def unknown_member() -> DiscordError:
    return DiscordError(404, UNKNOWN_MEMBER, "Unknown Member")


def unknown_command() -> DiscordError:
    return DiscordError(404, UNKNOWN_APPLICATION_COMMAND, "Unknown application command")


def entity_too_large() -> DiscordError:
    """An uploaded file above the channel's ``attachment_size_limit``."""
    return DiscordError(413, REQUEST_ENTITY_TOO_LARGE, "Request entity too large")


def empty_message() -> DiscordError:
    return DiscordError(400, CANNOT_SEND_EMPTY_MESSAGE, "Cannot send an empty message")


def missing_access() -> DiscordError:
    """The bot may not see this resource at all (or lacks an intent the route needs)."""
    return DiscordError(403, MISSING_ACCESS, "Missing Access")


def missing_permissions() -> DiscordError:
    return DiscordError(403, MISSING_PERMISSIONS, "Missing Permissions")


def cannot_edit_others() -> DiscordError:
    return DiscordError(
        403, CANNOT_EDIT_OTHERS_MESSAGE, "Cannot edit a message authored by another user"
    )


def cannot_message_user() -> DiscordError:
    """A DM to a member who does not accept them from this server's members."""
    return DiscordError(403, CANNOT_MESSAGE_USER, "Cannot send messages to this user")
