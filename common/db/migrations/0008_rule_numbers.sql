-- Rules get a per-tenant integer number (issue 13): the TCR-compatible API's
-- policy ID, and a short name the CLI and the console may show. A number is
-- given once, by a trigger from the tenant's counter, and never reused after
-- its rule is deleted, so a script holding it never reaches another rule.

ALTER TABLE tenants ADD COLUMN rule_number_seq integer NOT NULL DEFAULT 0;
ALTER TABLE rules ADD COLUMN number integer;

UPDATE rules r SET number = n.rn
  FROM (SELECT id, row_number() OVER (PARTITION BY tenant_id ORDER BY created_at, id) AS rn
          FROM rules) n
 WHERE n.id = r.id;
UPDATE tenants t SET rule_number_seq = coalesce(
    (SELECT max(number) FROM rules WHERE tenant_id = t.id), 0);

ALTER TABLE rules
    ALTER COLUMN number SET NOT NULL,
    ADD CONSTRAINT rules_tenant_number UNIQUE (tenant_id, number);

CREATE FUNCTION ferry_rule_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tenants SET rule_number_seq = rule_number_seq + 1
     WHERE id = NEW.tenant_id
    RETURNING rule_number_seq INTO NEW.number;
    RETURN NEW;
END $$;

-- On insert only: an UPDATE cannot change a rule's number either.
CREATE TRIGGER rules_number BEFORE INSERT ON rules
    FOR EACH ROW EXECUTE FUNCTION ferry_rule_number();

CREATE FUNCTION ferry_rule_number_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.number := OLD.number;
    RETURN NEW;
END $$;

CREATE TRIGGER rules_number_fixed BEFORE UPDATE OF number ON rules
    FOR EACH ROW EXECUTE FUNCTION ferry_rule_number_fixed();
