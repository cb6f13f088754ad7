// Placeholder until the driver lands: announces itself and runs nothing.
require("fs").writeSync(4, JSON.stringify({ type: "ready" }) + "\n");
