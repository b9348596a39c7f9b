/*
 * mappa_default: the default MAPPA policy (SPEC section 7).
 */
#ifndef POLICY_MAPPA_DEFAULT_H
#define POLICY_MAPPA_DEFAULT_H

/* The policy file text (JSON, "visor-policy/1"), NUL-terminated, static
 * storage.  Load it with policy_load(text, strlen(text), ...). */
const char *policy_mappa_default_json(void);

#endif
