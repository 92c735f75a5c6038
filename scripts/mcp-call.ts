/**
 * Calls one tool of an MCP server through the nunq-connect gateway, as the platform's agent
 * would: the script holds only a nunq JWT, never the server's token.
 *
 *   TOKEN=$(node bin/nunq-connect.js token --user alice)
 *   node --import tsx scripts/mcp-call.ts --token "$TOKEN" --server demo-tools --tool echo --args '{"text":"hi"}'
 *
 * Options: --url (the service, default http://localhost:3000), --server (an MCP integration id;
 * omit it to use the aggregating `/mcp` endpoint, where tools are named `<server>__<tool>`),
 * --tool (omit it to list the tools), --args (JSON object).
 * When the server is not connected yet, the gateway answers with a URL to open in the browser.
 */
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.NUNQ_URL ?? 'http://localhost:3000' },
    token: { type: 'string', default: process.env.TOKEN },
    server: { type: 'string' },
    tool: { type: 'string' },
    args: { type: 'string', default: '{}' },
  },
});

if (values.token === undefined || values.token === '') {
  process.stderr.write(
    'mcp-call: --token (or $TOKEN) is required: node bin/nunq-connect.js token --user alice\n',
  );
  process.exit(2);
}
let toolArgs: Record<string, unknown>;
try {
  toolArgs = JSON.parse(values.args);
} catch {
  process.stderr.write('mcp-call: --args must be a JSON object\n');
  process.exit(2);
}

const endpoint = new URL(values.server === undefined ? '/mcp' : `/mcp/${values.server}`, values.url);
const transport = new StreamableHTTPClientTransport(endpoint, {
  requestInit: { headers: { authorization: `Bearer ${values.token}` } },
});
const client = new Client(
  { name: 'nunq-mcp-call', version: '1.0.0' },
  // Declaring URL elicitation lets the gateway answer "connect first" with a link (-32042).
  { capabilities: { elicitation: { url: {} } } },
);

try {
  await client.connect(transport);
  if (values.tool === undefined) {
    const { tools } = await client.listTools();
    for (const tool of tools) process.stdout.write(`${tool.name}\t${tool.description ?? ''}\n`);
  } else {
    const result = await client.callTool({ name: values.tool, arguments: toolArgs });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (result.isError === true) process.exitCode = 1;
  }
} catch (error) {
  if (error instanceof McpError && error.code === ErrorCode.UrlElicitationRequired) {
    const data = error.data as { elicitations?: { url?: string; message?: string }[] } | undefined;
    for (const e of data?.elicitations ?? []) {
      process.stdout.write(`${e.message ?? 'Open this link to continue'}: ${e.url}\n`);
    }
    process.stdout.write('Then run this command again.\n');
    process.exitCode = 3;
  } else {
    process.stderr.write(`mcp-call: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
} finally {
  await client.close();
}
