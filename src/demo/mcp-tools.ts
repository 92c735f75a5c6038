import { setTimeout as sleep } from 'node:timers/promises';
import { McpServer, type RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { appendToLog } from './mcp-http.js';

/** The scope every call needs, and the one `admin_op` needs on top (step-up). */
export const toolsReadScope = 'tools:read';
export const toolsAdminScope = 'tools:admin';
/** The tool whose call needs `tools:admin`. */
export const adminToolName = 'admin_op';
/** The tool whose call the HTTP layer answers by cutting the stream mid-call. */
export const hangUpToolName = 'hang_up';
/** The tool that appears and disappears (`notifications/tools/list_changed`). */
export const bonusToolName = 'bonus';
export const readmeUri = 'demo://tools/readme';

export interface ToolEvents {
  /** Request ids of `slow` calls the client cancelled (`notifications/cancelled`). */
  cancelledCalls: Array<string | number>;
}

export interface ToolsOptions {
  name: string;
  /** Whether `bonus` is listed when the session starts. */
  bonusTool: boolean;
  /** Without step-up (the HTTP 403 answered before the call), `admin_op` checks the scope itself. */
  stepUp: boolean;
  events: ToolEvents;
}

/** One session's MCP server and the tool that can be toggled on it. */
export interface ToolsSession {
  server: McpServer;
  bonus: RegisteredTool;
}

const text = (value: string): CallToolResult => ({ content: [{ type: 'text', text: value }] });

/**
 * The demo tools, built with the MCP SDK: `echo`, `add`, `whoami` (the token's `sub`, so a test
 * can prove whose token arrived), `slow` (progress notifications, honours cancellation), `ask`
 * (a server-to-client `elicitation/create` form request), `admin_op` (needs `tools:admin`),
 * `hang_up` (the stream is cut mid-call), `bonus` (toggled to send
 * `notifications/tools/list_changed`), a prompt and a resource.
 */
export function createToolsServer(options: ToolsOptions): ToolsSession {
  const server = new McpServer({ name: options.name, version: '1.0.0' });

  server.registerTool(
    'echo',
    { description: 'Returns the text it is given.', inputSchema: { text: z.string() } },
    async ({ text: value }) => text(value),
  );

  server.registerTool(
    'add',
    {
      description: 'Adds two numbers.',
      inputSchema: { a: z.number(), b: z.number() },
      outputSchema: { sum: z.number() },
    },
    async ({ a, b }) => ({ ...text(String(a + b)), structuredContent: { sum: a + b } }),
  );

  server.registerTool(
    'whoami',
    {
      description: 'Returns the subject (`sub`) of the access token this call came with.',
      outputSchema: { sub: z.string(), clientId: z.string(), scopes: z.array(z.string()) },
    },
    async (extra) => {
      const holder = extra.authInfo;
      const sub = typeof holder?.extra?.sub === 'string' ? holder.extra.sub : '';
      return {
        ...text(sub),
        structuredContent: { sub, clientId: holder?.clientId ?? '', scopes: holder?.scopes ?? [] },
      };
    },
  );

  server.registerTool(
    'slow',
    {
      description: 'Counts `steps` steps of `intervalMs`, reporting progress; stops when cancelled.',
      inputSchema: {
        steps: z.number().int().min(1).max(100).default(5),
        intervalMs: z.number().int().min(1).max(10_000).default(200),
      },
    },
    async ({ steps, intervalMs }, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (let step = 1; step <= steps; step += 1) {
        try {
          await sleep(intervalMs, undefined, { signal: extra.signal });
        } catch {
          appendToLog(options.events.cancelledCalls, extra.requestId);
          return { ...text(`cancelled after ${step - 1} of ${steps} steps`), isError: true };
        }
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress: step, total: steps, message: `step ${step} of ${steps}` },
          });
        }
      }
      return text(`done after ${steps} steps`);
    },
  );

  server.registerTool(
    'ask',
    {
      description: 'Asks the user a question (an elicitation request to the client) and returns the answer.',
      inputSchema: { question: z.string() },
    },
    async ({ question }) => {
      const result = await server.server.elicitInput({
        message: question,
        requestedSchema: {
          type: 'object',
          properties: { answer: { type: 'string', title: 'Answer' } },
          required: ['answer'],
        },
      });
      if (result.action !== 'accept') return text(result.action);
      return text(String(result.content?.answer ?? ''));
    },
  );

  server.registerTool(
    adminToolName,
    { description: `An administrative operation: needs the ${toolsAdminScope} scope.` },
    async (extra) => {
      if (!options.stepUp && !(extra.authInfo?.scopes ?? []).includes(toolsAdminScope)) {
        return { ...text(`${adminToolName} needs the ${toolsAdminScope} scope`), isError: true };
      }
      return text(`admin operation done for ${String(extra.authInfo?.extra?.sub ?? '')}`);
    },
  );

  server.registerTool(
    hangUpToolName,
    { description: 'Drops the connection in the middle of the call (the HTTP stream is cut).' },
    // Only reached if the HTTP layer let the call through.
    async () => ({ ...text('the stream was not cut'), isError: true }),
  );

  const bonus = server.registerTool(bonusToolName, { description: 'A tool that comes and goes.' }, async () =>
    text('bonus'),
  );
  if (!options.bonusTool) bonus.disable();

  server.registerPrompt(
    'greeting',
    { description: 'A greeting for someone.', argsSchema: { name: z.string() } },
    ({ name }) => ({
      messages: [{ role: 'user', content: { type: 'text', text: `Say hello to ${name}.` } }],
    }),
  );

  server.registerResource(
    'readme',
    readmeUri,
    { description: 'What this server is.', mimeType: 'text/plain' },
    async (uri) => ({
      contents: [
        { uri: uri.href, mimeType: 'text/plain', text: `${options.name}: a demo MCP server behind OAuth.` },
      ],
    }),
  );

  return { server, bonus };
}
