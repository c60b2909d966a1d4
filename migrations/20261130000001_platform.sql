-- The platform's name on a shared Docker engine when PLATFORM_INSTANCE is unset: made with the
-- database, so two platforms with databases of their own never take each other's clusters. A
-- database that already holds sessions keeps `main`, the old default, which named its clusters.
CREATE TABLE platform (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    instance TEXT NOT NULL
);

INSERT INTO platform (id, instance)
SELECT 1, CASE WHEN EXISTS (SELECT 1 FROM sessions) THEN 'main' ELSE 'p' || lower(hex(randomblob(5))) END;
