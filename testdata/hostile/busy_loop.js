// Resource: spin node's event loop forever; no callback ever runs again.
// The wall-clock timeout must end it.
'use strict';
for (;;) { /* spin */ }
