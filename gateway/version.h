/* The product version, shared by visor-gw and visorctl. */
#ifndef GATEWAY_VERSION_H
#define GATEWAY_VERSION_H

#define VISOR_VERSION "0.1.0"

/* The version string, "0.1.0". */
const char *visor_version(void);

#endif
