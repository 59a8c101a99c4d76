-- A delivery's route (logstore.Route as JSON: the route's condition id and
-- the event's values of its URL's placeholders), NULL for the
-- subscription's own URL: a redelivery from the history needs it to go
-- where the subscription says now, as a retry does. Not indexed, so the
-- state updates stay HOT; adding a column without a default rewrites
-- nothing.

-- +goose Up
ALTER TABLE deliveries ADD COLUMN route jsonb;

-- +goose Down
ALTER TABLE deliveries DROP COLUMN route;
