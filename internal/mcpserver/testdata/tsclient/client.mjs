// Drives an MCP server over stdio with the official TypeScript SDK client,
// as an agent's host would, and prints what it saw as one JSON object.
//
//   node client.mjs <command> [args...]     e.g. node client.mjs cove mcp
//
// The SDK client checks the protocol on its own: it validates every tool
// result's structured content against the tool's output schema.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: node client.mjs <command> [args...]");
  process.exit(2);
}

const transport = new StdioClientTransport({
  command,
  args,
  // The server needs the caller's environment (cove's configuration).
  env: { ...process.env },
  stderr: "inherit",
});
const client = new Client({ name: "cove-ts-client", version: "1.0.0" });
await client.connect(transport);

const tools = await client.listTools();
const run = await client.callTool({
  name: "run_code",
  arguments: { language: "python", code: "import sys\nprint(6 * 7)\nprint('oops', file=sys.stderr)" },
});
const failing = await client.callTool({
  name: "run_code",
  arguments: { language: "javascript", code: "process.exit(3)" },
});
const sandbox = await client.callTool({ name: "create_sandbox", arguments: { language: "typescript" } });
const id = sandbox.structuredContent.sandbox_id;
await client.callTool({
  name: "write_file",
  arguments: { sandbox_id: id, path: "notes/hello.txt", content: "hi from typescript" },
});
const exec = await client.callTool({ name: "exec_command", arguments: { sandbox_id: id, command: "cat notes/hello.txt" } });
const resources = await client.listResources();
const templates = await client.listResourceTemplates();
const read = await client.readResource({ uri: `cove://sandboxes/${id}/files/notes/hello.txt` });
const missing = await client.callTool({
  name: "exec_command",
  arguments: { sandbox_id: "no-such-sandbox", command: "true" },
});
// An agent works in several sandboxes at once: parallel calls.
const parallel = await Promise.all(
  [1, 2, 3].map((n) =>
    client.callTool({ name: "run_code", arguments: { language: "python", code: `print(${n} * 7)` } }),
  ),
);
const server = client.getServerVersion();
await client.close();

console.log(
  JSON.stringify({
    server,
    tools: tools.tools.map((t) => ({ name: t.name, outputSchema: Boolean(t.outputSchema) })),
    run,
    failing,
    sandbox_id: id,
    exec,
    resources: resources.resources.map((r) => r.uri),
    templates: templates.resourceTemplates.map((t) => t.uriTemplate),
    read: read.contents,
    missing,
    parallel: parallel.map((r) => r.structuredContent.stdout),
  }),
);
