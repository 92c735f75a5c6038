import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userIdPattern } from '../../src/identity/identity.js';
import { adminsAudience } from '../../src/notify/notifications.js';
import { up as moveAdminAudience } from '../../src/store/migrations/0007_admin_audience.js';
import type { Database } from '../../src/store/types.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';

interface Listed {
  id: string;
  type: string;
}

/** Security 4: administrator notifications go to an audience no user id can take. */
describe.each(databaseKinds)('the administrators audience on %s', (kind) => {
  let database: TestDatabase;
  let svc: TestService;
  let db: Kysely<Database>;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    svc = await startTestService({ database, serviceOptions: { background: false } });
    db = svc.service.ctx.store.db;
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  const alert = (provider: string) =>
    db.transaction().execute((trx) =>
      svc.service.ctx.notifications.create(trx as unknown as Kysely<Database>, {
        userId: adminsAudience,
        type: 'provider.config_error',
        connectionId: `provider:${provider}`,
        data: { provider, error: 'invalid_client' },
      }),
    );
  const listFor = async (token: string) =>
    (await (
      await fetch(`${svc.url}/api/v1/notifications`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as Listed[];

  it('is outside the user-id alphabet', () => {
    expect(userIdPattern.test(adminsAudience)).toBe(false);
    expect(userIdPattern.test('@admins')).toBe(true); // the old audience was a valid user id
  });

  it.each(['@admins', '#admins', 'admins'])(
    'never shows an admin alert to a user whose id is %j',
    async (userId) => {
      const id = await alert(`p-${userId.replace(/\W/g, '')}`);
      const token = await svc.token(userId).catch(() => undefined);
      if (token === undefined || !userIdPattern.test(userId)) {
        // A sub outside the alphabet is refused at sign-in, so it cannot read anything.
        const res = await fetch(`${svc.url}/api/v1/notifications`, {
          headers: { authorization: `Bearer ${token}` },
        });
        expect(res.status).toBe(401);
        return;
      }
      const seen = await listFor(token);
      expect(seen.map((n) => n.id)).not.toContain(id);
      const read = await fetch(`${svc.url}/api/v1/notifications/${id}/read`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(read.status).toBe(404);
      // An administrator sees it.
      const admin = await listFor(await svc.token('root', 'admin'));
      expect(admin.map((n) => n.id)).toContain(id);
    },
  );

  it('migration 0007 moves old admin alerts to the new audience and leaves a user @admins their own', async () => {
    const now = Date.now();
    const row = (id: string, type: string) => ({
      id,
      user_id: '@admins',
      type,
      connection_id: null,
      data: '{}',
      created_at: now,
      read_at: null,
      resolved_at: null,
    });
    await db
      .insertInto('notifications')
      .values([
        row('11111111-1111-4111-8111-111111111111', 'provider.config_error'),
        row('22222222-2222-4222-8222-222222222222', 'connection.needs_reauth'),
      ])
      .execute();
    await db
      .insertInto('events')
      .values([
        {
          user_id: '@admins',
          type: 'notification',
          data: '{"type":"provider.config_error"}',
          created_at: now,
        },
        { user_id: '@admins', type: 'connection.status', data: '{"status":"active"}', created_at: now },
      ])
      .execute();
    await moveAdminAudience(db as unknown as Kysely<unknown>);
    const owners = await db
      .selectFrom('notifications')
      .select(['id', 'user_id'])
      .where('id', 'in', ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'])
      .orderBy('id')
      .execute();
    expect(owners.map((o) => o.user_id)).toEqual([adminsAudience, '@admins']);
    const events = await db.selectFrom('events').select('type').where('user_id', '=', '@admins').execute();
    expect(events.map((e) => e.type)).toEqual(['connection.status']);
  });
});
