"""An end-to-end tour of logstore: a table, dated commits, history, and reads by version, timestamp and tag."""

import tempfile

import pyarrow as pa

import logstore


def show(title: str, table: pa.Table) -> None:
    print(f"\n{title}")
    for row in table.to_pylist():
        print("   ", row)


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        store = logstore.init(f"{root}/store")
        print(f"created a store in {store.path}")

        users = store.create_table(
            "users",
            pa.table({"id": [1, 2, 3], "name": ["ada", "grace", "linus"], "score": [10.0, 20.0, 30.0]}),
            key="id",
            message="initial import",
            author="demo",
            timestamp="2021-01-15",
        )
        print("version 0: created 'users' with 3 rows, dated 2021-01-15")
        users.append(pa.table({"id": [4], "name": ["barbara"], "score": [40.0]}), message="new user", timestamp="2021-06-01")
        print("version 1: appended barbara, dated 2021-06-01")
        users.tag("v1.0")
        print("tagged version 1 as 'v1.0'")
        users.update(set={"score": "score * 2"}, where="name = 'ada'", message="double ada", timestamp="2022-03-01")
        print("version 2: doubled ada's score, dated 2022-03-01")
        users.delete(where="id = 3", message="linus left", timestamp="2022-09-01")
        print("version 3: deleted linus, dated 2022-09-01")
        users.upsert(pa.table({"id": [2, 5], "name": ["grace", "edsger"], "score": [25.0, 50.0]}), message="sync")
        print("version 4: upserted grace (updated) and edsger (new), dated now")

        print("\nhistory, newest first:")
        for c in users.history():
            print(
                f"  v{c.version}  {c.timestamp:%Y-%m-%d %H:%M}  {c.operation:<7} "
                f"+{c.rows_inserted} ~{c.rows_updated} -{c.rows_deleted}  rows={c.num_rows}  {c.message}"
            )

        show("latest version:", users.read())
        show("read(version=0):", users.read(version=0))
        show(f"read(as_of='2022-01-01') -> version {users.version_at('2022-01-01')}:", users.read(as_of="2022-01-01"))
        show("read(tag='v1.0'):", users.read(tag="v1.0"))
        show("read(version=2, columns=['name'], where='score > 20'):", users.read(version=2, columns=["name"], where="score > 20"))

        users.restore(version=0, message="back to the import")
        show(f"restore(version=0) made version {users.version}:", users.read())
        assert users.read().equals(users.read(version=0))
        print("\nthe restored version equals version 0; every earlier version is still readable.")


if __name__ == "__main__":
    main()
