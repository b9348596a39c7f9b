/*
 * gen: synthetic records.  See gen.h for the contract.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "adapters/gen.h"
#include "crypto/identity.h"
#include "util/json.h"

/* Every date is relative to this day (days since 1970-01-01 of 2026-11-01),
 * so output never depends on the clock. */
#define GEN_TODAY 20758L

struct gen {
	char area[IDENTITY_PART_MAX];
	char prefix[8];
	uint64_t state;
	size_t count;
	size_t next;
	unsigned char *cat;	/* per record, when following a plan */
	unsigned char *lvl;
};

/* --- built-in lists (invented) ------------------------------------------- */

static const char *const surnames[] = {
	"Ashcombe", "Brindley", "Calloway", "Dunmore", "Ellerby", "Fenwick",
	"Garside", "Halloran", "Ibbotson", "Jessop", "Kirkwood", "Lansdale",
	"Merriott", "Norcross", "Oakridge", "Pendry", "Quayle", "Rushworth",
	"Stannard", "Thewlis", "Underhay", "Varley", "Whitlock", "Yardley",
	"Brackenbury", "Corliss", "Dewhirst", "Fairclough", "Gosling", "Hebblethwaite",
};
static const char *const male_names[] = {
	"Aaron", "Barnaby", "Callum", "Declan", "Elliot", "Finley", "Gareth",
	"Hamish", "Isaac", "Jarvis", "Kieran", "Lewis", "Marcus", "Nathan",
	"Oscar", "Perry", "Rhys", "Stuart", "Toby", "Warren",
};
static const char *const female_names[] = {
	"Abigail", "Bethany", "Chloe", "Danielle", "Eleanor", "Fiona", "Gemma",
	"Hollie", "Imogen", "Jade", "Kerry", "Leanne", "Megan", "Naomi",
	"Olivia", "Paige", "Rosie", "Stacey", "Tara", "Yasmin",
};
static const char *const streets[] = {
	"Mill Lane", "Church Street", "Station Road", "Orchard Close",
	"Kestrel Way", "Marsh Road", "Willow Drive", "Chapel Row",
	"Beacon Hill", "Quay Street", "Heron Court", "Rectory Gardens",
};
struct town { const char *name, *district; };
static const struct town towns_norfolk[] = {
	{ "Norwich", "NR1" }, { "Norwich", "NR3" }, { "Great Yarmouth", "NR30" },
	{ "King's Lynn", "PE30" }, { "Thetford", "IP24" }, { "Dereham", "NR19" },
	{ "Cromer", "NR27" }, { "Wymondham", "NR18" },
};
static const struct town towns_other[] = {
	{ "Ipswich", "IP1" }, { "Bury St Edmunds", "IP33" }, { "Lowestoft", "NR32" },
	{ "Bedford", "MK40" }, { "Luton", "LU1" }, { "Felixstowe", "IP11" },
};
static const char *const offences[5][4] = {
	{ NULL, NULL, NULL, NULL },
	{ "Sexual assault", "Possession of indecent images", "Rape",
	  "Sexual communication with a child" },
	{ "Wounding with intent", "Manslaughter", "Robbery", "Arson endangering life" },
	{ "Controlling or coercive behaviour", "Stalking", "Threats to kill",
	  "Kidnapping" },
	{ "Preparation of terrorist acts", "Dissemination of terrorist publications",
	  "Collection of information useful for terrorism",
	  "Membership of a proscribed organisation" },
};
static const char *const courts[] = {
	"Norwich Crown Court", "Ipswich Crown Court", "Luton Crown Court",
	"Central Criminal Court", "King's Lynn Magistrates' Court",
	"Great Yarmouth Magistrates' Court",
};
static const char *const sentences[] = {
	"4 years imprisonment", "30 months imprisonment", "Extended sentence, 8 years",
	"Community order, 24 months", "Suspended sentence, 2 years",
	"Life, minimum term 12 years", "6 years imprisonment",
};
static const char *const order_types[] = { "SHPO", "SHPO-FTR", "NO", "SRO" };
static const char *const prohibitions[] = {
	"Not to have unsupervised contact with any child under 16",
	"Not to use any device capable of accessing the internet unless it can be inspected",
	"Not to enter the exclusion zone shown on the attached map",
	"Not to travel outside the United Kingdom",
	"Not to contact the named victim directly or indirectly",
	"Not to reside in any household with children without approval",
	"To notify the police of any new email address or user name within 3 days",
};
static const char *const conditions[] = {
	"Reside at the approved address and be of good behaviour",
	"Curfew 19:00 to 07:00 monitored by electronic tag",
	"Attend all appointments with the supervising officer",
	"Not to enter the town centre exclusion zone",
	"Disclose developing relationships to the supervising officer",
	"Not to own or use more than one mobile telephone",
	"Complete the accredited programme as directed",
	"Submit to polygraph testing as directed",
};
static const char *const factors[] = {
	"Previous breach of licence", "Substance misuse", "Unstable accommodation",
	"Access to potential victims", "Poor victim empathy",
	"Association with pro-criminal peers", "Fixated on a former partner",
	"Extremist ideology", "Impulsivity under stress",
};
static const char *const at_risk[] = {
	"Children in the community", "Known adult female victim",
	"Former partner", "Staff in custody and the community",
	"Members of the public", "Known child in the family network",
};
static const char *const actions[] = {
	"Weekly home visits by the offender manager",
	"Police public-protection officer to visit monthly",
	"Share licence conditions with the local school safeguarding lead",
	"Review accommodation suitability at the next MAPPA meeting",
	"Disclosure to new partner under the child sex offender disclosure scheme",
	"Monitor electronic-monitoring alerts daily",
};
static const char *const health_notes[] = {
	"Prescribed medication for anxiety; adherence reported as good",
	"Engaging with the community mental health team",
	"Alcohol dependency; attending a recovery group",
	"Type 2 diabetes, managed",
	"History of self-harm; last episode over two years ago",
};
static const char *const intel_text[] = {
	"Seen in the company of a known associate near a play area",
	"Reported to be using an unregistered mobile telephone",
	"Believed to be staying overnight at an undisclosed address",
	"Social media account in a different name identified",
	"Associate reports plans to travel abroad",
	"Vehicle seen parked outside a school at closing time",
};
static const char *const makes[] = {
	"Ford", "Vauxhall", "Toyota", "Volkswagen", "Peugeot", "Nissan", "Honda",
};
static const char *const colours[] = {
	"Silver", "Blue", "Black", "White", "Red", "Grey", "Green",
};
static const char *const providers[] = { "Electronic Monitoring Services",
	"Tagwatch Monitoring" };
static const char *const em_types[] = { "location", "alcohol", "curfew" };
static const char *const roshes[] = { "low", "medium", "high", "very-high" };
static const char *const tools_cat1[] = { "ARMS", "RM2000" };
static const char *const financial[] = {
	"Receives Universal Credit", "Two bank accounts declared",
	"Undeclared cash income suspected",
};

#define PICK(g, arr) ((arr)[rnd(g, sizeof(arr) / sizeof((arr)[0]))])

/* --- PRNG and dates -------------------------------------------------------- */

static uint64_t
splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0, without modulo bias. */
static size_t
rnd(gen_t *g, size_t n)
{
	uint64_t x, lim = UINT64_MAX - UINT64_MAX % n;

	do
		x = splitmix64(&g->state);
	while (x >= lim);
	return (size_t)(x % n);
}

static long
rnd_between(gen_t *g, long lo, long hi)
{
	return lo + (long)rnd(g, (size_t)(hi - lo + 1));
}

/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm). */
static void
date_str(long z, char out[11])
{
	long era, doe, yoe, y, doy, mp, d, m;
	char tmp[64];

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	if (m <= 2)
		y++;
	/* y is within 1900..2100 here; the wide buffer quiets the compiler */
	snprintf(tmp, sizeof(tmp), "%04ld-%02ld-%02ld", y, m, d);
	memcpy(out, tmp, 10);
	out[10] = '\0';
}

/* --- plans -------------------------------------------------------------- */

int
gen_plan_builtin(const char *name, gen_plan_t *plan)
{
	memset(plan, 0, sizeof(*plan));
	if (strcmp(name, "norfolk-2021-22") != 0)
		return -1;
	/* eligible_on_snapshot, Norfolk MAPPA annual report 2021-22 */
	plan->n[1][1] = 1175; plan->n[2][1] = 451; plan->n[3][1] = 0;
	plan->n[1][2] = 13;   plan->n[2][2] = 15;  plan->n[3][2] = 17;
	plan->n[1][3] = 0;    plan->n[2][3] = 2;   plan->n[3][3] = 2;
	return 0;
}

size_t
gen_plan_total(const gen_plan_t *plan)
{
	size_t t = 0;
	int c, l;

	for (c = 1; c <= 4; c++)
		for (l = 1; l <= 3; l++)
			t += plan->n[c][l];
	return t;
}

static int
count_of(const cJSON *obj, const char *key, unsigned *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	int64_t x;

	if (v == NULL)
		return -1;
	if (cJSON_IsNull(v)) {
		*out = 0;
		return 0;
	}
	if (json_get_int(obj, key, 0, 1000000, &x) != 0)
		return -1;
	*out = (unsigned)x;
	return 0;
}

int
gen_plan_from_json(const char *json, size_t len, gen_plan_t *plan, char *err,
    size_t errlen)
{
	cJSON *doc;
	const cJSON *snap, *row;
	char why[160], key[32];
	unsigned v, sum, total;
	int c, l, rc = -1;

	memset(plan, 0, sizeof(*plan));
	if ((doc = json_parse_strict(json, len, 8, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	snap = cJSON_GetObjectItemCaseSensitive(doc, "eligible_on_snapshot");
	if (!cJSON_IsObject(snap)) {
		snprintf(err, errlen, "no eligible_on_snapshot object");
		goto out;
	}
	for (l = 1; l <= 3; l++) {
		snprintf(key, sizeof(key), "level_%d", l);
		row = cJSON_GetObjectItemCaseSensitive(snap, key);
		if (!cJSON_IsObject(row)) {
			snprintf(err, errlen, "eligible_on_snapshot.%s missing", key);
			goto out;
		}
		sum = 0;
		for (c = 1; c <= 4; c++) {
			snprintf(key, sizeof(key), "category_%d", c);
			if (count_of(row, key, &v) < 0) {
				if (c == 4 && cJSON_GetObjectItemCaseSensitive(row,
				    key) == NULL)
					continue;	/* category 4 not reported */
				snprintf(err, errlen, "eligible_on_snapshot.level_%d."
				    "%s: want a count or null", l, key);
				goto out;
			}
			plan->n[c][l] = v;
			sum += v;
		}
		if (cJSON_GetObjectItemCaseSensitive(row, "total") != NULL &&
		    (count_of(row, "total", &total) < 0 || total != sum)) {
			snprintf(err, errlen, "eligible_on_snapshot.level_%d.total "
			    "is not the sum of its categories", l);
			goto out;
		}
	}
	if (gen_plan_total(plan) == 0 || gen_plan_total(plan) > GEN_COUNT_MAX) {
		snprintf(err, errlen, "eligible_on_snapshot: total out of range");
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(doc);
	return rc;
}

/* --- generator ------------------------------------------------------------ */

void
gen_id_prefix(const char *area, char out[8])
{
	static const struct { const char *area, *prefix; } known[] = {
		{ "norfolk", "NFK" }, { "suffolk", "SFK" },
		{ "bedfordshire", "BDS" }, { "essex", "ESX" },
		{ "cambridgeshire", "CAM" }, { "hertfordshire", "HRT" },
	};
	size_t i, n = 0;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(area, known[i].area) == 0) {
			snprintf(out, 8, "%s", known[i].prefix);
			return;
		}
	for (i = 0; area[i] != '\0' && n < 3; i++) {
		if (area[i] >= 'a' && area[i] <= 'z')
			out[n++] = (char)(area[i] - 'a' + 'A');
		else if (area[i] >= '0' && area[i] <= '9')
			out[n++] = area[i];
	}
	while (n < 3)
		out[n++] = 'X';
	out[n] = '\0';
}

gen_t *
gen_new(const char *area, uint64_t seed, size_t count, const gen_plan_t *plan,
    char *err, size_t errlen)
{
	gen_t *g;
	size_t i, j, k, total;
	unsigned char t;
	int c, l;

	if (area == NULL || !identity_valid_label(area, strlen(area))) {
		snprintf(err, errlen, "area must match [a-z0-9-]{1,32}");
		return NULL;
	}
	if (plan != NULL) {
		total = gen_plan_total(plan);
		if (total == 0 || total > GEN_COUNT_MAX ||
		    (count != 0 && count != total)) {
			snprintf(err, errlen, "the plan holds %zu records; --count "
			    "must be omitted or equal", total);
			return NULL;
		}
		count = total;
	}
	if (count == 0 || count > GEN_COUNT_MAX) {
		snprintf(err, errlen, "count must be 1..%u", GEN_COUNT_MAX);
		return NULL;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(g->area, sizeof(g->area), "%s", area);
	gen_id_prefix(area, g->prefix);
	g->state = seed;
	g->count = count;
	if (plan != NULL) {
		g->cat = malloc(count);
		g->lvl = malloc(count);
		if (g->cat == NULL || g->lvl == NULL) {
			snprintf(err, errlen, "out of memory");
			gen_free(g);
			return NULL;
		}
		k = 0;
		for (c = 1; c <= 4; c++)
			for (l = 1; l <= 3; l++)
				for (j = 0; j < plan->n[c][l]; j++) {
					g->cat[k] = (unsigned char)c;
					g->lvl[k] = (unsigned char)l;
					k++;
				}
		/* Fisher-Yates, so categories are mixed through the output */
		for (i = count - 1; i > 0; i--) {
			j = rnd(g, i + 1);
			t = g->cat[i]; g->cat[i] = g->cat[j]; g->cat[j] = t;
			t = g->lvl[i]; g->lvl[i] = g->lvl[j]; g->lvl[j] = t;
		}
	}
	return g;
}

void
gen_free(gen_t *g)
{
	if (g == NULL)
		return;
	free(g->cat);
	free(g->lvl);
	free(g);
}

/* The valid (category, level) pairs, category 3 never at level 1. */
static const unsigned char combos[][2] = {
	{ 1, 1 }, { 1, 2 }, { 1, 3 }, { 2, 1 }, { 2, 2 }, { 2, 3 },
	{ 3, 2 }, { 3, 3 }, { 4, 1 }, { 4, 2 }, { 4, 3 },
};

static void
pick_category_level(gen_t *g, size_t i, int *cat, int *lvl)
{
	size_t r;

	if (g->cat != NULL) {
		*cat = g->cat[i];
		*lvl = g->lvl[i];
		return;
	}
	if (i < sizeof(combos) / sizeof(combos[0])) {
		*cat = combos[i][0];
		*lvl = combos[i][1];
		return;
	}
	/* roughly the national mix: mostly category 1, mostly level 1 */
	r = rnd(g, 100);
	*cat = r < 68 ? 1 : r < 94 ? 2 : r < 98 ? 3 : 4;
	r = rnd(g, 100);
	*lvl = r < 94 ? 1 : r < 99 ? 2 : 3;
	if (*cat == 3 && *lvl == 1)
		*lvl = 2;
}

/* Helpers that add to an object.  cJSON ignores a NULL parent or item, so
 * out of memory cannot crash here; gen_next then finds the record short
 * (complete()) and fails. */
static void
add_date(cJSON *o, const char *key, long day)
{
	char d[11];

	date_str(day, d);
	cJSON_AddStringToObject(o, key, d);
}

static void
add_texts(gen_t *g, cJSON *o, const char *key, const char *const *pool,
    size_t npool, size_t lo, size_t hi)
{
	cJSON *a = cJSON_AddArrayToObject(o, key);
	size_t n, i, start;

	if (a == NULL)
		return;
	n = lo + rnd(g, hi - lo + 1);
	if (n > npool)
		n = npool;
	/* consecutive items from a random start: distinct */
	start = rnd(g, npool);
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(pool[(start + i) %
		    npool]));
}

#define TEXTS(g, o, key, pool, lo, hi) \
	add_texts(g, o, key, pool, sizeof(pool) / sizeof((pool)[0]), lo, hi)

static cJSON *
make_record(gen_t *g, size_t i)
{
	cJSON *r, *o, *a, *e;
	char buf[96];
	int cat, lvl, male, k, n;
	long dob, made, since;
	const struct town *towns, *tw;
	size_t ntowns;
	const char *fn;

	pick_category_level(g, i, &cat, &lvl);
	if ((r = cJSON_CreateObject()) == NULL)
		return NULL;
	snprintf(buf, sizeof(buf), "%s-%06zu", g->prefix, i + 1);
	cJSON_AddStringToObject(r, "id", buf);
	cJSON_AddStringToObject(r, "managing_area", g->area);
	cJSON_AddNumberToObject(r, "category", cat);
	cJSON_AddNumberToObject(r, "level", lvl);

	/* identity */
	male = rnd(g, 100) < 90;
	o = cJSON_AddObjectToObject(r, "person");
	cJSON_AddStringToObject(o, "surname", PICK(g, surnames));
	fn = male ? PICK(g, male_names) : PICK(g, female_names);
	snprintf(buf, sizeof(buf), "%s %s", fn,
	    male ? PICK(g, male_names) : PICK(g, female_names));
	cJSON_AddStringToObject(o, "forenames", buf);
	dob = GEN_TODAY - rnd_between(g, 19 * 365, 75 * 365);
	add_date(o, "dob", dob);
	cJSON_AddStringToObject(o, "gender", male ? "male" : "female");
	a = cJSON_AddArrayToObject(o, "aliases");
	n = (int)rnd(g, 3);
	for (k = 0; k < n; k++) {
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "surname", PICK(g, surnames));
		cJSON_AddStringToObject(e, "forenames", fn);
		cJSON_AddItemToArray(a, e);
	}
	snprintf(buf, sizeof(buf), "%02ld/%07zu%c",
	    (long)rnd_between(g, 0, 25), rnd(g, 10000000),
	    (char)('A' + rnd(g, 26)));
	cJSON_AddStringToObject(o, "pnc_id", buf);
	snprintf(buf, sizeof(buf), "photo:%s-%06zu-%zu", g->prefix, i + 1,
	    rnd(g, 9) + 1);
	cJSON_AddStringToObject(o, "photo_ref", buf);

	/* location */
	if (strcmp(g->area, "norfolk") == 0) {
		towns = towns_norfolk;
		ntowns = sizeof(towns_norfolk) / sizeof(towns_norfolk[0]);
	} else {
		towns = towns_other;
		ntowns = sizeof(towns_other) / sizeof(towns_other[0]);
	}
	a = cJSON_AddArrayToObject(r, "addresses");
	n = 1 + (int)rnd(g, 2);
	since = GEN_TODAY - rnd_between(g, 30, 900);
	for (k = 0; k < n; k++) {
		static const char *const types[] = { "home", "temporary",
		    "approved-premises" };

		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "type", k == 0 ? PICK(g, types) :
		    "home");
		snprintf(buf, sizeof(buf), "%zu %s", rnd(g, 180) + 1,
		    PICK(g, streets));
		cJSON_AddStringToObject(e, "line1", buf);
		tw = &towns[rnd(g, ntowns)];
		cJSON_AddStringToObject(e, "town", tw->name);
		snprintf(buf, sizeof(buf), "%s %zu%c%c", tw->district,
		    rnd(g, 9) + 1, (char)('A' + rnd(g, 26)),
		    (char)('A' + rnd(g, 26)));
		cJSON_AddStringToObject(e, "postcode", buf);
		if (k == 0)
			add_date(e, "from", since);
		else {
			add_date(e, "from", since - rnd_between(g, 200, 2000));
			add_date(e, "to", since - 1);
		}
		cJSON_AddItemToArray(a, e);
	}

	/* risk */
	o = cJSON_AddObjectToObject(r, "risk");
	cJSON_AddStringToObject(o, "rosh", lvl == 3 ? (rnd(g, 2) ? "very-high" :
	    "high") : roshes[rnd(g, lvl == 1 ? 3 : 4)]);
	cJSON_AddStringToObject(o, "tool", cat == 1 ? PICK(g, tools_cat1) : "OASys");
	add_date(o, "assessed", GEN_TODAY - rnd_between(g, 10, 360));
	TEXTS(g, o, "factors", factors, 1, 3);
	TEXTS(g, o, "people_at_risk", at_risk, 1, 2);
	o = cJSON_AddObjectToObject(r, "rmp");
	snprintf(buf, sizeof(buf), "Level %d management; %s risk factors "
	    "addressed through the actions below", lvl,
	    rnd(g, 2) ? "dynamic" : "static");
	cJSON_AddStringToObject(o, "summary", buf);
	TEXTS(g, o, "actions", actions, 2, 3);
	add_date(o, "next_review", GEN_TODAY + rnd_between(g, 14, lvl == 1 ?
	    365 : 112));

	/* legal */
	a = cJSON_AddArrayToObject(r, "convictions");
	n = 1 + (int)rnd(g, 3);
	for (k = 0; k < n; k++) {
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "offence", offences[cat][rnd(g, 4)]);
		add_date(e, "date", since - rnd_between(g, 400, 6000));
		cJSON_AddStringToObject(e, "court", PICK(g, courts));
		cJSON_AddStringToObject(e, "sentence", PICK(g, sentences));
		cJSON_AddItemToArray(a, e);
	}
	a = cJSON_AddArrayToObject(r, "orders");
	n = 1 + (int)rnd(g, 2);
	for (k = 0; k < n; k++) {
		e = cJSON_CreateObject();
		/* the first order cycles so every type appears early */
		cJSON_AddStringToObject(e, "type", k == 0 ? order_types[i % 4] :
		    PICK(g, order_types));
		made = GEN_TODAY - rnd_between(g, 30, 2500);
		add_date(e, "made", made);
		add_date(e, "expires", made + rnd_between(g, 5, 15) * 365);
		TEXTS(g, e, "prohibitions", prohibitions, 1, 3);
		cJSON_AddItemToArray(a, e);
	}
	o = cJSON_AddObjectToObject(r, "notification");
	cJSON_AddBoolToObject(o, "required", cat == 1);
	add_date(o, "since", since - rnd_between(g, 100, 3000));
	if (rnd(g, 3) == 0)
		cJSON_AddStringToObject(o, "until", "indefinite");
	else
		add_date(o, "until", GEN_TODAY + rnd_between(g, 100, 3650));
	add_date(o, "last_notified", GEN_TODAY - rnd_between(g, 1, 360));
	o = cJSON_AddObjectToObject(r, "licence");
	add_date(o, "end", GEN_TODAY + rnd_between(g, 30, 1500));
	TEXTS(g, o, "conditions", conditions, 2, 4);

	/* monitoring */
	o = cJSON_AddObjectToObject(r, "em");
	cJSON_AddBoolToObject(o, "active", lvl > 1 || rnd(g, 4) == 0);
	cJSON_AddStringToObject(o, "type", em_types[i % 3]);
	cJSON_AddStringToObject(o, "provider", PICK(g, providers));
	add_date(o, "last_alert", GEN_TODAY - rnd_between(g, 1, 200));

	/* health */
	o = cJSON_AddObjectToObject(r, "health");
	TEXTS(g, o, "notes", health_notes, 1, 2);

	/* intelligence: always both handling values */
	a = cJSON_AddArrayToObject(r, "intelligence");
	n = 2 + (int)rnd(g, 2);
	for (k = 0; k < n; k++) {
		e = cJSON_CreateObject();
		snprintf(buf, sizeof(buf), "%zu%c", rnd(g, 3) + 1,
		    (char)('A' + rnd(g, 5)));
		cJSON_AddStringToObject(e, "grade", buf);
		cJSON_AddStringToObject(e, "handling", k == 0 ? "shareable" :
		    k == 1 ? "police-only" : (rnd(g, 2) ? "shareable" :
		    "police-only"));
		add_date(e, "date", GEN_TODAY - rnd_between(g, 1, 700));
		cJSON_AddStringToObject(e, "text", PICK(g, intel_text));
		cJSON_AddItemToArray(a, e);
	}
	a = cJSON_AddArrayToObject(r, "associates");
	n = 1 + (int)rnd(g, 2);
	for (k = 0; k < n; k++) {
		snprintf(buf, sizeof(buf), "%s %s (%s)", PICK(g, male_names),
		    PICK(g, surnames), rnd(g, 2) ? "known offender" : "family member");
		cJSON_AddItemToArray(a, cJSON_CreateString(buf));
	}
	a = cJSON_AddArrayToObject(r, "vehicles");
	n = 1 + (int)rnd(g, 2);
	for (k = 0; k < n; k++) {
		e = cJSON_CreateObject();
		snprintf(buf, sizeof(buf), "%c%c%02zu %c%c%c",
		    (char)('A' + rnd(g, 26)), (char)('A' + rnd(g, 26)),
		    rnd(g, 75) + 1, (char)('A' + rnd(g, 26)),
		    (char)('A' + rnd(g, 26)), (char)('A' + rnd(g, 26)));
		cJSON_AddStringToObject(e, "vrm", buf);
		cJSON_AddStringToObject(e, "make", PICK(g, makes));
		cJSON_AddStringToObject(e, "colour", PICK(g, colours));
		cJSON_AddItemToArray(a, e);
	}
	TEXTS(g, r, "financial", financial, 1, 2);
	return r;
}

/* Every group present with its members: what out-of-memory would break. */
static int
complete(const cJSON *r)
{
	static const char *const keys[] = { "id", "managing_area", "category",
	    "level", "person", "addresses", "risk", "rmp", "convictions",
	    "orders", "notification", "licence", "em", "health",
	    "intelligence", "associates", "vehicles", "financial" };
	const cJSON *c, *e;
	size_t i;

	if (cJSON_GetArraySize(r) != (int)(sizeof(keys) / sizeof(keys[0])))
		return 0;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		c = cJSON_GetObjectItemCaseSensitive(r, keys[i]);
		if (c == NULL)
			return 0;
		if ((cJSON_IsArray(c) || cJSON_IsObject(c)) && c->child == NULL)
			return 0;
		cJSON_ArrayForEach(e, c)
			if ((cJSON_IsArray(e) || cJSON_IsObject(e)) &&
			    e->child == NULL && strcmp(keys[i], "person") != 0)
				return 0;
	}
	return 1;
}

int
gen_next(gen_t *g, buf_t *out)
{
	cJSON *r;
	char *s;
	int rc;

	if (g->next >= g->count)
		return 0;
	if ((r = make_record(g, g->next)) == NULL)
		return -1;
	if (!complete(r)) {
		cJSON_Delete(r);
		return -1;
	}
	s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	if (s == NULL)
		return -1;
	rc = buf_puts(out, s) == 0 && buf_puts(out, "\n") == 0 ? 1 : -1;
	cJSON_free(s);
	if (rc == 1)
		g->next++;
	return rc;
}
