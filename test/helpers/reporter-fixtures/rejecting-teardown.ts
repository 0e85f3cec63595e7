/** A global setup whose teardown leaves a rejection nobody handles, after the reporters saw the run end. */
export default function setup() {
  return () => {
    void Promise.reject(new Error('global teardown rejected late'));
  };
}
