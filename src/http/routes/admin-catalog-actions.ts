import type { Kysely } from 'kysely';
import { disconnect } from '../../connections/disconnect.js';
import type { AuditAction } from '../../notify/audit.js';
import { McpDiscoveryError } from '../../oauth/mcp/errors.js';
import { checkUrl } from '../../oauth/mcp/fetch.js';
import type { ClientCredentials, IntegrationRecord, ProviderRecord } from '../../store/repos/catalog.js';
import type { WriteOutcome } from '../../store/repos/catalog-admin.js';
import type { Database } from '../../store/types.js';
import { type AppContext, disconnectDepsOf } from '../context.js';
import { notFound, Problem } from '../problem.js';
import { parseInput } from '../validate.js';
import {
  integrationEntry,
  integrationInput,
  isPlainObject,
  mcpServerEntry,
  mcpServerInput,
  mergePatch,
  providerEntry,
  providerInput,
} from './admin-catalog-entries.js';
import {
  catalogPatchBody,
  integrationCreateBody,
  mcpServerCreateBody,
  providerCreateBody,
  providerSwitchBody,
} from './admin-catalog-schemas.js';

// The run-time catalog's write side, once: the JSON admin API (admin-catalog.ts) and the console
// pages (admin-catalog-pages.ts) both call these. Each checks its input with the config file's own
// schema, refuses entries of the config file (read_only), guards against a stale read
// (edit_conflict), and writes the audit row in the change's transaction. Failures are Problems
// whose `errors` name each field as `body.<field>`.

/** `oauth`: an integration (`/integrations`); `mcp`: an MCP server (`/mcp-servers`). One id namespace. */
export type EntryKind = 'oauth' | 'mcp';

/** Who acts, and through what (`console` is added to the audit row's data; the API adds nothing). */
export interface Actor {
  userId: string;
  via?: 'console';
}

/** A change's outcome: the entry as stored now, and while it is disabled how many connections wait. */
export interface Updated<T> {
  record: T;
  unusableConnections?: number;
}

export const whatOf = (kind: EntryKind) => (kind === 'mcp' ? 'MCP server' : 'integration');

/** 409: the entry comes from the config file, which stays its source of truth. */
export const readOnly = (what: string, id: string) =>
  new Problem(
    409,
    'read_only',
    'Conflict',
    `The ${what} "${id}" comes from the config file and is read-only here; change the file instead.`,
  );

/** 400 naming one field, as {@link parseInput} words it. */
export const fieldProblem = (path: string, message: string) =>
  new Problem(400, 'validation_failed', 'Bad Request', `${path}: ${message}`, {
    errors: [{ path, message }],
  });

export function editConflict(): Problem {
  return new Problem(
    409,
    'edit_conflict',
    'Conflict',
    'This entry was changed since you read it. Read it again and repeat your change.',
  );
}

/** The entity tag of an entry's version, as the API's `ETag` and the console's hidden field carry it. */
export const etagOf = (updatedAt: number) => `"${updatedAt}"`;

/**
 * The catalog actions for one service. `ifMatch` is an entity tag (`"<version>"`, the API's
 * `If-Match` or the console form's hidden field): when given, a change based on another version
 * is refused (`edit_conflict`) instead of overwriting it.
 */
export function catalogActions(ctx: AppContext) {
  const audit =
    (
      actor: Actor,
      action: AuditAction,
      targetType: string,
      targetId: string,
      data: Record<string, unknown>,
    ) =>
    (db: Kysely<Database>) =>
      ctx.audit.record(
        {
          actor: actor.userId,
          action,
          targetType,
          targetId,
          data: actor.via === undefined ? data : { ...data, via: actor.via },
        },
        db,
      );
  const credentialsOf = async (table: 'providers' | 'integrations', id: string) => {
    try {
      return table === 'providers'
        ? await ctx.catalog.providerCredentials(id)
        : await ctx.catalog.integrationCredentials(id);
    } catch {
      return undefined; // unreadable under the current keys: shown as set, never opened
    }
  };
  /** The version a change must match: the one `ifMatch` names when given, else the one just read. */
  const expectedVersion = (ifMatch: string | undefined, updatedAt: number): number => {
    if (ifMatch === undefined) return updatedAt;
    const sent = /^(?:W\/)?"(\d{1,16})"$/.exec(ifMatch.trim());
    if (sent === null || Number(sent[1]) !== updatedAt) throw editConflict();
    return updatedAt;
  };
  const patchOf = (patch: unknown) => {
    if (!isPlainObject(patch)) throw fieldProblem('body', 'must be a JSON object');
    return parseInput(catalogPatchBody, patch, 'body');
  };

  const providerOr404 = async (id: string): Promise<ProviderRecord> => {
    const p = await ctx.catalog.getProvider(id);
    if (p === undefined) throw notFound(`There is no provider "${id}".`);
    return p;
  };
  const entryOr404 = async (kind: EntryKind, id: string): Promise<IntegrationRecord> => {
    const i = await ctx.catalog.getIntegration(id);
    if (i === undefined || i.kind !== kind) throw notFound(`There is no ${whatOf(kind)} "${id}".`);
    return i;
  };
  /** 400 unless the provider exists (checked here: the file's schema checks it against the file). */
  const requireProvider = async (providerId: string | null) => {
    if (providerId !== null && (await ctx.catalog.getProvider(providerId)) === undefined) {
      throw fieldProblem('body.provider', 'must be the id of a provider (see /api/v1/admin/providers)');
    }
  };
  /** 400 when the URL's scheme or literal address is refused by the outbound policy (DNS is checked on use). */
  const requireReachable = (url: string | undefined) => {
    if (url === undefined) return;
    try {
      checkUrl(new URL(url), ctx.config.outbound, 'the url');
    } catch (error) {
      if (error instanceof McpDiscoveryError) {
        throw fieldProblem(
          'body.url',
          'is refused by the outbound policy (scheme, or a network not allowed)',
        );
      }
      throw error;
    }
  };
  const parseEntry = (kind: EntryKind, entry: unknown) =>
    kind === 'mcp'
      ? mcpServerInput(parseInput(mcpServerCreateBody, entry, 'body'))
      : integrationInput(parseInput(integrationCreateBody, entry, 'body'));

  /** How many connections the integrations of a provider have (kept, unusable while it is disabled). */
  const connectionsOfProvider = async (providerId: string): Promise<number> => {
    const ids = await ctx.catalog.integrationsUsing(providerId);
    const counts = await Promise.all(ids.map((id) => ctx.connections.countForIntegration(id)));
    return counts.reduce((a, b) => a + b, 0);
  };

  return {
    credentialsOf,
    providerOr404,
    entryOr404,
    connectionsOfProvider,
    requireReachable,

    /** Adds a provider: a `providers` entry of the config file, plus `enabled`. */
    async createProvider(actor: Actor, body: unknown): Promise<ProviderRecord> {
      if (!isPlainObject(body)) throw fieldProblem('body', 'must be a JSON object');
      const { enabled, ...entry } = body;
      const on = parseInput(providerSwitchBody, { enabled }, 'body').enabled ?? true;
      const input = providerInput(parseInput(providerCreateBody, entry, 'body'), on);
      refuseReservedId('provider', input.id);
      const created = await ctx.catalog.admin.createProvider(
        input,
        ctx.clock.now(),
        audit(actor, 'admin.provider_created', 'provider', input.id, {
          type: input.type,
          enabled: on,
          clientSecret: input.credentials?.clientSecret === undefined ? 'none' : 'set',
        }),
      );
      if (!created) throw duplicate('provider', input.id);
      return providerOr404(input.id);
    },

    /** Edits a provider with a JSON Merge Patch (`clientSecret` left out: kept; null: cleared). */
    async updateProvider(
      actor: Actor,
      id: string,
      rawPatch: unknown,
      ifMatch?: string,
    ): Promise<Updated<ProviderRecord>> {
      const current = await providerOr404(id);
      if (current.source === 'config') throw readOnly('provider', id);
      const patch = patchOf(rawPatch);
      const version = expectedVersion(ifMatch, current.updatedAt);
      unchangeable(patch, { id, type: current.type });
      const { enabled, ...entryPatch } = patch;
      const on = parseInput(providerSwitchBody, { enabled }, 'body').enabled ?? current.enabled;
      const stored: ClientCredentials = (await credentialsOf('providers', id)) ?? {};
      const merged = mergePatch(providerEntry(current, stored), entryPatch);
      const input = providerInput(parseInput(providerCreateBody, merged, 'body'), on);
      const secretTouched = 'clientSecret' in patch || 'privateKey' in patch;
      const outcome = await ctx.catalog.admin.updateProvider(
        { ...input, credentials: secretTouched ? input.credentials : 'keep' },
        ctx.clock.now(),
        version,
        audit(actor, 'admin.provider_updated', 'provider', id, {
          fields: Object.keys(patch).sort(),
          enabled: on,
          ...(secretTouched ? { clientSecret: secretChange(patch.clientSecret) } : {}),
        }),
      );
      requireDone(outcome);
      const record = await providerOr404(id);
      return on ? { record } : { record, unusableConnections: await connectionsOfProvider(id) };
    },

    /** Deletes a provider no integration uses (409 `in_use` listing them otherwise). */
    async deleteProvider(actor: Actor, id: string): Promise<void> {
      const current = await providerOr404(id);
      if (current.source === 'config') throw readOnly('provider', id);
      const result = await ctx.catalog.admin.deleteProvider(
        id,
        audit(actor, 'admin.provider_deleted', 'provider', id, { type: current.type }),
      );
      if (result.usedBy.length > 0) {
        throw new Problem(
          409,
          'in_use',
          'Conflict',
          `The provider "${id}" is used by ${result.usedBy.length} integration(s): ${result.usedBy.join(', ')}. Delete or move them first.`,
          { integrations: result.usedBy },
        );
      }
      if (!result.deleted) throw notFound(`There is no provider "${id}".`);
    },

    /** Adds an integration or MCP server: an `integrations` or `mcpServers` entry of the config file. */
    async createEntry(kind: EntryKind, actor: Actor, body: unknown): Promise<IntegrationRecord> {
      if (!isPlainObject(body)) throw fieldProblem('body', 'must be a JSON object');
      const input = parseEntry(kind, body);
      refuseReservedId(kind, input.id);
      await requireProvider(input.providerId);
      requireReachable(input.settings.url);
      const created = await ctx.catalog.admin.createIntegration(
        input,
        ctx.clock.now(),
        audit(actor, 'admin.integration_created', 'integration', input.id, {
          kind,
          enabled: input.enabled,
          ...(kind === 'mcp' ? { clientSecret: input.credentials === null ? 'none' : 'set' } : {}),
        }),
      );
      if (!created) throw duplicate('integration or MCP server', input.id);
      return entryOr404(kind, input.id);
    },

    /** Edits an integration or MCP server with a JSON Merge Patch, as {@link updateProvider}. */
    async updateEntry(
      kind: EntryKind,
      actor: Actor,
      id: string,
      rawPatch: unknown,
      ifMatch?: string,
    ): Promise<Updated<IntegrationRecord>> {
      const current = await entryOr404(kind, id);
      if (current.source === 'config') throw readOnly(whatOf(kind), id);
      const patch = patchOf(rawPatch);
      const version = expectedVersion(ifMatch, current.updatedAt);
      unchangeable(patch, { id });
      const stored = kind === 'mcp' ? ((await credentialsOf('integrations', id)) ?? {}) : {};
      const base = kind === 'mcp' ? mcpServerEntry(current, stored) : integrationEntry(current);
      const input = parseEntry(kind, mergePatch(base, patch));
      if ('provider' in patch) await requireProvider(input.providerId);
      if ('url' in patch) requireReachable(input.settings.url);
      const secretTouched = kind === 'mcp' && 'clientSecret' in patch;
      const outcome = await ctx.catalog.admin.updateIntegration(
        { ...input, credentials: secretTouched ? input.credentials : 'keep' },
        ctx.clock.now(),
        version,
        audit(actor, 'admin.integration_updated', 'integration', id, {
          kind,
          fields: Object.keys(patch).sort(),
          enabled: input.enabled,
          ...(secretTouched ? { clientSecret: secretChange(patch.clientSecret) } : {}),
        }),
      );
      requireDone(outcome);
      const record = await entryOr404(kind, id);
      return input.enabled
        ? { record }
        : { record, unusableConnections: await ctx.connections.countForIntegration(id) };
    },

    /**
     * Deletes an integration or MCP server. With connections, only when `confirmed` (409
     * `confirm_required` counting them otherwise): each is revoked at the provider, then removed.
     */
    async deleteEntry(kind: EntryKind, actor: Actor, id: string, confirmed: boolean): Promise<void> {
      const what = whatOf(kind);
      const current = await entryOr404(kind, id);
      if (current.source === 'config') throw readOnly(what, id);
      const count = await ctx.connections.countForIntegration(id);
      if (count > 0 && !confirmed) {
        throw new Problem(
          409,
          'confirm_required',
          'Conflict',
          `Deleting the ${what} "${id}" revokes ${count} connection(s) at the provider and removes them. Repeat with ?confirm=true to go ahead.`,
          { connections: count },
        );
      }
      const removed = await removeIntegration(
        ctx,
        id,
        actor.userId,
        audit(actor, 'admin.integration_deleted', 'integration', id, { kind, connectionsRemoved: count }),
      );
      if (!removed) throw notFound(`There is no ${what} "${id}".`);
    },
  };
}

export type CatalogActions = ReturnType<typeof catalogActions>;

/** `clientSecret` in a PATCH: what the audit says happened to it (never the value). */
function secretChange(value: unknown): 'set' | 'cleared' {
  return value === null ? 'cleared' : 'set';
}

/** `id` (and a provider's `type`) identify the entry: a PATCH may repeat them, not change them. */
function unchangeable(patch: Record<string, unknown>, fixed: Record<string, string>): void {
  for (const [key, value] of Object.entries(fixed)) {
    if (key in patch && patch[key] !== value) {
      throw fieldProblem(`body.${key}`, 'cannot be changed; create a new entry instead');
    }
  }
}

/** 409 `already_exists`, naming the field (`body.id`) so a form can show it beside the id. */
function duplicate(what: 'provider' | 'integration or MCP server', id: string): Problem {
  const message = `is already ${what === 'provider' ? 'a provider' : 'an integration or MCP server'}`;
  return new Problem(409, 'already_exists', 'Conflict', `An ${what} with the id "${id}" already exists.`, {
    errors: [{ path: 'body.id', message }],
  });
}

function requireDone(outcome: WriteOutcome): void {
  if (outcome === 'stale') throw editConflict();
}

/**
 * Removes an integration with its connections: each is disconnected as its user would (revoked at
 * the provider, deleted, `connection.deleted` event and webhook), then the entry goes, in a
 * transaction that refuses while a connection is left (one made meanwhile is removed next round;
 * a flow finishing after the delete finds no integration and is refused).
 */
async function removeIntegration(
  ctx: AppContext,
  id: string,
  actor: string,
  then: (db: Kysely<Database>) => Promise<void>,
): Promise<boolean> {
  const deps = disconnectDepsOf(ctx);
  for (let round = 0; round < 1000; round++) {
    const outcome = await ctx.catalog.admin.deleteIntegration(id, then);
    if (outcome !== 'has_connections') return outcome === 'done';
    for (const row of await ctx.connections.listForIntegration(id, 50)) {
      await disconnect(deps, row, actor);
    }
  }
  throw new Error(`integration ${id} kept gaining connections while being deleted`);
}

/** Ids the console's own pages take (`/admin/providers/new`, `/admin/mcp-servers/preview`). */
const reservedIds: Readonly<Record<string, string>> = { provider: 'new', mcp: 'preview' };

/** Refuses an id that would hide the entry's console page behind one of the console's own. */
export function refuseReservedId(kind: 'provider' | EntryKind, id: string): void {
  if (reservedIds[kind] === id) {
    throw fieldProblem('body.id', `"${id}" is reserved by the console; choose another id`);
  }
}
