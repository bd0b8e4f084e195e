"""The Discord adapter: slash commands, buttons, menus and forms, and chat moderation.

The adapter only translates, as the Slack one does. A slash command's options are written back as
the command line the shared parser reads (``bot.discord_commands``); a click or a form becomes an
``Invocation`` of kind ``action`` or ``submit``; ``Dispatcher.dispatch`` runs in a worker thread
(the core is synchronous) and its ``Reply`` is rendered by ``bot.discord_render``.

How each kind is answered:

- a slash command: the reply is the interaction's response (ephemeral when the reply says so); a
  reply that is a form opens a modal. A command still running after ``defer_after`` seconds is
  deferred (Discord allows 3 s) and its reply then replaces the "thinking…" message, privately.
- a click (buttons and menus of replies, notifications and mod-log posts alike, routed by their
  custom id ``action|value``): a reply that says ``replace_original`` edits the message clicked
  on, otherwise it is a new message; a form opens a modal.
- a form submission: the reply is a new message; errors in fields come back privately, naming
  each field, with a button that opens the form again filled in as it was sent.
- a reply's files (a stream report's chart) are attached to the message that answers (as
  ``discord.File``); when Discord refuses them (too large, …) or a file cannot be read, the reply
  is sent without them and says so.
- every message in a server (except bots'): a ``ChatEvent`` for the injected ``ChatGuard``, whose
  ``Outcome`` is carried out (delete, notice, timeout, ban …) and posted to the mod-log. The
  ``effects`` of command replies (``ModAction``, ``ModLogPost``) go through the same code.

Nothing here pings: every message carries ``AllowedMentions.none()`` and escaped text. A refusal
by Discord (missing permission) is logged and reported in the mod-log post or privately to the
person who ran the command; it never stops the client.

The token is read from ``Settings`` and only given to discord.py; it is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import discord
import yarl
from discord import app_commands
from discord.utils import MISSING

from bot import discord_render as render
from bot.discord_commands import CommandShape, OptionShape, argument_values, build_tree, command_line, command_shapes
from bot.discord_moderation import PLATFORM, Enforcer, LiveDiscordModeration, chat_event
from core.i18n import _, use_language
from core.refs import ChannelRef, Mention
from handlers import suggest
from handlers.args import MAX_UPLOAD, Upload
from handlers.chat import AllowAll, ChatGuard
from handlers.reply import Invocation, Modal, Reply, attachment_failed

if TYPE_CHECKING:
    from bot.app import Mona

#: Discord allows 3 s to answer an interaction; past this, answer "thinking…" and edit it later.
DEFER_AFTER = 2.0

log = logging.getLogger("mona.discord")

Interaction = discord.Interaction[Any]


def point_at(api_base: str, gateway: str) -> None:
    """Where discord.py connects: Discord's REST API and gateway, or local stand-ins (tests).
    Process-wide: discord.py keeps both as class attributes."""
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


def _plain(value: Any) -> Any:
    """A submitted option value as ``command_line`` takes it: users and channels as references."""
    if isinstance(value, discord.abc.User):
        return Mention(str(value.id), value.display_name)
    if isinstance(value, app_commands.AppCommandChannel | app_commands.AppCommandThread | discord.abc.GuildChannel):
        return ChannelRef(str(value.id), value.name)
    return value


def platform_roles(user: discord.abc.User, guild: discord.Guild | None,
                   permissions: discord.Permissions) -> frozenset[str]:
    """What Discord says this person is in the server: its owner ("broadcaster", as on Twitch) or a
    moderator (the Moderate Members permission, as the interaction resolves it), which lets them
    use /mod whatever their mona role."""
    roles: set[str] = set()
    if guild is not None and guild.owner_id == user.id:
        roles.add("broadcaster")
    if guild is not None and permissions.moderate_members:
        roles.add("moderator")
    return frozenset(roles)


class MonaDiscord(discord.Client):
    """A discord.py client running mona: the command tree generated from the registry, one router
    for every component and form, and ``on_message`` feeding the ``ChatGuard``."""

    def __init__(self, mona: Mona, *, guard: ChatGuard | None = None, guild_ids: tuple[int, ...] | None = None,
                 defer_after: float = DEFER_AFTER, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable "Message Content Intent" for the bot
        # mona has no voice features: spare the log discord.py's warnings about voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(intents=intents, allowed_mentions=render.NO_MENTIONS, **options)
        self.mona = mona
        self.guard: ChatGuard = guard or AllowAll()
        self.guild_ids = mona.settings.discord_guild_ids if guild_ids is None else guild_ids
        self.defer_after = defer_after
        self.ids = render.CustomIds()
        self.enforcer = Enforcer(self, self.ids, mona.settings.lang)
        self.tree = app_commands.CommandTree(self)
        with use_language(mona.settings.lang):
            self.shapes = command_shapes(mona.dispatcher.registry)
        build_tree(self.tree, self.shapes, run=self._on_command, suggest=self._suggest)

    async def setup_hook(self) -> None:
        # Commands typed anywhere act on Discord through this connected client while it runs.
        self._rest_moderation = self.mona.use_moderator(LiveDiscordModeration(self, self.ids, self.mona.settings.lang))
        await self.sync_commands()

    async def close(self) -> None:
        self.mona.restore_moderator("discord", getattr(self, "_rest_moderation", None))
        await super().close()

    async def sync_commands(self) -> None:
        """Register the commands with Discord: in each configured server (effective at once), or
        globally (Discord may take a while to show them everywhere)."""
        try:
            if self.guild_ids:
                for guild_id in self.guild_ids:
                    guild = discord.Object(id=guild_id)
                    self.tree.copy_global_to(guild=guild)
                    synced = await self.tree.sync(guild=guild)
                    log.info("registered %d commands in server %s", len(synced), guild_id)
            else:
                synced = await self.tree.sync()
                log.info("registered %d global commands", len(synced))
        except discord.HTTPException as e:
            log.error("Discord refused the commands (%s %s); is the bot invited with the applications.commands scope?",
                      e.status, e.text)

    # -- dispatching ----------------------------------------------------------------------------

    def _invocation(self, interaction: Interaction, **kw: Any) -> Invocation:
        user = interaction.user
        guild = interaction.guild
        # People named in the command's options who moderate this server: moderation spares them.
        protected = frozenset(
            str(v.id) for _name, v in (interaction.namespace if interaction.type == discord.InteractionType.application_command else [])
            if isinstance(v, discord.Member) and (v.guild_permissions.moderate_members or v.guild_permissions.manage_messages
                                                  or (guild is not None and guild.owner_id == v.id)))
        return Invocation(platform=PLATFORM, user_id=str(user.id), user_name=user.display_name,
                          channel_id=str(interaction.channel_id) if interaction.channel_id else None,
                          community=str(guild.id) if guild else None, protected_ids=protected,
                          platform_roles=platform_roles(user, guild, interaction.permissions), **kw)

    async def _dispatch(self, inv: Invocation, command: tuple[CommandShape, dict[str, Any]] | None = None) -> Reply:
        if command is None:
            return await asyncio.to_thread(self.mona.dispatcher.dispatch, inv)
        shape, values = command
        return await asyncio.to_thread(self.mona.dispatcher.dispatch_values, inv, shape.spec.cls,
                                       argument_values(shape, values))

    async def _answer(self, interaction: Interaction, inv: Invocation, form: Modal | None = None,
                      command: tuple[CommandShape, dict[str, Any]] | None = None) -> None:
        """Dispatch, answer the interaction with the reply, then carry out its effects."""
        task = asyncio.ensure_future(self._dispatch(inv, command))
        try:
            reply = await asyncio.wait_for(asyncio.shield(task), self.defer_after)
        except TimeoutError:
            with contextlib.suppress(discord.HTTPException):  # too late already: answering will say so
                await interaction.response.defer(ephemeral=True, thinking=True)
            reply = await task
        await self._respond(interaction, inv, reply, form)

    async def _respond(self, interaction: Interaction, inv: Invocation, reply: Reply, form: Modal | None) -> None:
        deferred = interaction.response.is_done()
        with use_language(self.mona.settings.lang):
            if reply.modal is not None:
                if not deferred and inv.kind != "submit":
                    await interaction.response.send_modal(render.modal(reply.modal, self.ids.modal_id(reply.modal)))
                    return
                # Discord opens a form only in answer to a click (not after a form or a delay).
                reply = Reply(text=reply.text or _("Fill in the form:"),
                              actions=(self.ids.form_button(reply.modal.title, reply.modal),))
            elif reply.field_errors and inv.kind == "submit":
                again = (self.ids.form_button(_("Open the form again"), render.refilled(form, inv.values)),) if form else ()
                reply = Reply(text=render.field_errors_text(reply.field_errors, form), error=True, actions=again)
        files = reply.files if not reply.error else ()
        if files:
            try:
                await self._send(interaction, inv, reply, deferred, attached=[
                    discord.File(f.path, filename=f.filename, description=f.title[:1024]) for f in files])
                return
            except (discord.HTTPException, OSError) as e:  # too large, refused, or the file is gone
                why = f"{e.status} {e.text}".strip() if isinstance(e, discord.HTTPException) else type(e).__name__
                log.warning("attaching %s failed: %s", [f.filename for f in files], why)
                with use_language(self.mona.settings.lang):
                    note = attachment_failed(files, why)
                reply = dataclasses.replace(reply, footer="\n".join(p for p in (reply.footer, note) if p))
                deferred = interaction.response.is_done()
        await self._send(interaction, inv, reply, deferred)

    async def _send(self, interaction: Interaction, inv: Invocation, reply: Reply, deferred: bool, *,
                    attached: list[discord.File] | None = None) -> None:
        with use_language(self.mona.settings.lang):
            embed = render.embed(reply)
            view = render.view(reply.actions, self.ids)
        if deferred:
            await interaction.edit_original_response(embed=embed, view=view, allowed_mentions=render.NO_MENTIONS,
                                                     attachments=attached or MISSING)
        elif inv.kind == "action" and reply.replace_original and not reply.error:
            await interaction.response.edit_message(content=None, embed=embed, view=view,
                                                    allowed_mentions=render.NO_MENTIONS,
                                                    attachments=attached or MISSING)
        else:
            await interaction.response.send_message(embed=embed, view=view or MISSING, ephemeral=reply.ephemeral or reply.error,
                                                    allowed_mentions=render.NO_MENTIONS, files=attached or MISSING)

    async def _refuse(self, interaction: Interaction, text: str) -> None:
        embed = render.embed(Reply(text=text, error=True))
        if interaction.response.is_done():
            await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=render.NO_MENTIONS)
        else:
            await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=render.NO_MENTIONS)

    async def _guarded(self, interaction: Interaction, what: str, work: Awaitable[None]) -> None:
        """Run the answer to an interaction; any failure is logged and, when still possible,
        told to the person instead of leaving Discord's "The application did not respond"."""
        try:
            await work
        except Exception:
            log.exception("answering %s failed", what)
            try:
                with use_language(self.mona.settings.lang):
                    await self._refuse(interaction, _("Something went wrong on our side; try again."))
            except discord.HTTPException:
                pass

    # -- slash commands, autocomplete -------------------------------------------------------

    async def _on_command(self, interaction: Interaction, shape: CommandShape, values: dict[str, Any]) -> None:
        plain = {k: _plain(v) for k, v in values.items()}
        for name, value in values.items():
            if isinstance(value, discord.Attachment):  # the file itself, read from Discord's CDN (capped)
                if value.size > MAX_UPLOAD:
                    with use_language(self.mona.settings.lang):
                        await self._refuse(interaction, _("{file} is too large: at most 1 MB.", file=value.filename))
                    return
                plain[name] = Upload(value.filename, await value.read())
        inv = self._invocation(interaction, kind="command", text=command_line(shape, plain))
        await self._guarded(interaction, f"/{shape.qualified_name}", self._answer(interaction, inv, command=(shape, plain)))

    async def _suggest(self, interaction: Interaction, option: OptionShape, typed: str) -> list[str]:
        try:
            if option.suggest == "artist":
                return await asyncio.to_thread(suggest.artist_names, self.mona.db, typed)
            if option.suggest == "block":
                return await asyncio.to_thread(suggest.block_names, self.mona.db, typed)
            if option.suggest == "stage":
                return suggest.stage_names(typed)
            if option.suggest == "event":
                return suggest.event_names(typed)
            if option.suggest == "command":
                return suggest.command_names(typed)
        except Exception:
            log.exception("suggestions for %s failed", option.name)
        return []

    # -- components and forms ---------------------------------------------------------------

    async def on_interaction(self, interaction: Interaction) -> None:
        """The one router for clicks and form submissions (commands go through the tree)."""
        data: dict[str, Any] = dict(interaction.data or {})
        if interaction.type is discord.InteractionType.component:
            await self._guarded(interaction, "a click", self._on_component(interaction, data))
        elif interaction.type is discord.InteractionType.modal_submit:
            await self._guarded(interaction, "a form", self._on_submit(interaction, data))

    async def _on_component(self, interaction: Interaction, data: dict[str, Any]) -> None:
        decoded = self.ids.decode(str(data.get("custom_id") or ""))
        value: str | None = None
        if decoded is not None:
            value = decoded[1]
            if data.get("component_type") == discord.ComponentType.select.value:
                chosen = data.get("values") or []
                value = self.ids.chosen(str(chosen[0])) if chosen else None
        if decoded is None or value is None:
            with use_language(self.mona.settings.lang):
                await self._refuse(interaction, _("That button has expired; run the command again."))
            return
        action_id = decoded[0]
        if action_id == render.FORM_ACTION:
            form = self.ids.form(value)
            if form is None:
                with use_language(self.mona.settings.lang):
                    await self._refuse(interaction, _("That button has expired; run the command again."))
                return
            with use_language(self.mona.settings.lang):
                await interaction.response.send_modal(render.modal(form, self.ids.modal_id(form)))
            return
        await self._answer(interaction, self._invocation(interaction, kind="action", name=action_id, value=value))

    async def _on_submit(self, interaction: Interaction, data: dict[str, Any]) -> None:
        custom_id = str(data.get("custom_id") or "")
        decoded = self.ids.decode(custom_id)
        if decoded is None:
            with use_language(self.mona.settings.lang):
                await self._refuse(interaction, _("That form has expired; run the command again."))
            return
        callback_id, meta = decoded
        values = render.submitted_values(list(data.get("components") or []))
        inv = self._invocation(interaction, kind="submit", name=callback_id, value=meta, values=values)
        await self._answer(interaction, inv, self.ids.modal(custom_id))

    # -- moderation -------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.guild is None or message.webhook_id is not None:
            return
        event = chat_event(message)
        try:
            outcome = await asyncio.to_thread(self.guard.on_message, event)
        except Exception:
            log.exception("the chat guard failed on message %s", message.id)
            return
        if outcome.actions or outcome.modlog:
            await self.enforcer.carry_out(outcome.actions, outcome.modlog, message=message)


def run_discord(mona: Mona, guard: ChatGuard | None = None) -> None:
    """Connect to Discord with ``DISCORD_TOKEN`` and serve until interrupted (blocks)."""
    settings = mona.settings
    if not settings.discord_token:
        raise ValueError("DISCORD_TOKEN is required to connect to Discord")
    point_at(settings.discord_api_url, settings.discord_gateway_url)
    MonaDiscord(mona, guard=guard or mona.guard).run(settings.discord_token, log_handler=None)
